"""Runs against a real server: CODE_INTERPRETER_URL (and CODE_INTERPRETER_API_KEY) must be set.

packages/client's vitest suite starts the server on the real engine and runs this with
Debian's python3; never skipped: without the variables, every test fails.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from code_interpreter_client import CodeInterpreter, Session  # noqa: E402


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("CODE_INTERPRETER_URL")
    if not url:
        pytest.fail("CODE_INTERPRETER_URL is not set: run these tests through `pnpm --filter @code-interpreter/client test`")
    return url


@pytest.fixture(scope="session")
def api_key() -> str:
    return os.environ.get("CODE_INTERPRETER_API_KEY", "")


@pytest.fixture(scope="session")
def client(base_url: str, api_key: str) -> Iterator[CodeInterpreter]:
    with CodeInterpreter(base_url, api_key or None) as c:
        yield c


@pytest.fixture()
def cleanup() -> Iterator[List[Session]]:
    """Sessions appended here are deleted after the test, whatever happened."""
    sessions: List[Session] = []
    yield sessions
    for s in sessions:
        s.__exit__(None, None, None)
