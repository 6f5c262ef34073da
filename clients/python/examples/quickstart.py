"""The README's usage example, as a file that `tests/test_examples.py` runs against the real
server (the client package's suite starts it on the real Docker engine)."""
from typing import List, Optional

from code_interpreter_client import CodeInterpreter, NotFoundError, StagedFile


def quickstart(base_url: Optional[str] = None, api_key: Optional[str] = None) -> List[str]:
    seen: List[str] = []
    # defaults: $CODE_INTERPRETER_URL, $CODE_INTERPRETER_API_KEY
    with CodeInterpreter(base_url, api_key) as client:
        r = client.execute("print('hi')\n6 * 7")  # a fresh container, removed after
        seen.append(r.stdout)  # "hi\n42\n" (r.exit_code == 0)

        live: List[str] = []
        client.execute("for i in range(3): print(i)", on_stdout=live.append)  # live, over SSE
        seen.append("".join(live))  # "0\n1\n2\n"

        csv = client.files.upload(b"a,b\n1,2\n", "in.csv")
        out = client.execute("open('o.txt', 'w').write(open('in.csv').read().upper())",
                             files=[StagedFile("in.csv", csv.id)])
        seen.append(client.files.download(out.files[0].file_id).decode())  # "A,B\n1,2\n"

        # A session keeps /workspace and Python state between calls; `with` deletes it.
        with client.sessions.create(files=[StagedFile("in.csv", csv.id)], ttl_seconds=600) as s:
            s.run("import csv; rows = list(csv.reader(open('in.csv')))")
            seen.append(s.run("len(rows)").stdout)  # "2\n": the variable is still there
            seen.append(s.bash("ls").stdout)  # "in.csv\n"
            s.files.write("notes.txt", "hello")
            seen.append(s.files.read_text("notes.txt"))  # "hello"
            for entry in s.files.list():
                seen.append("%s %s" % (entry.path, entry.kind))
            s.keepalive(600)
        # ← the session is deleted here (one already gone is fine)

        try:
            client.sessions.get(s.id)
        except NotFoundError as e:
            seen.append(str(e.status))  # 404: typed errors, one class per status
    return seen
