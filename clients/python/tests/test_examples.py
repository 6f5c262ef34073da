"""The README's example (examples/quickstart.py) runs against the real server and says what it shows."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from quickstart import quickstart  # noqa: E402


def test_the_readme_example_runs(base_url: str, api_key: str) -> None:
    assert quickstart(base_url, api_key or None) == [
        "hi\n42\n",
        "0\n1\n2\n",
        "A,B\n1,2\n",
        "2\n",
        "in.csv\n",
        "hello",
        "in.csv file",
        "notes.txt file",
        "404",
    ]
