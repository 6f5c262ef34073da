/**
 * The README's usage example, as a file this package's tests compile and run against the real
 * server on the real Docker engine (test/examples.test.ts).
 */
// In your project: import { CodeInterpreter, NotFoundError } from "@code-interpreter/client";
import { CodeInterpreter, NotFoundError } from "../src/index.js";

export async function quickstart(baseUrl: string, apiKey?: string): Promise<string[]> {
  const seen: string[] = [];
  const client = new CodeInterpreter({ baseUrl, apiKey }); // defaults: $CODE_INTERPRETER_URL, ..._API_KEY

  // One-shot, in a fresh container (removed after):
  const r = await client.execute("print('hi')\n6 * 7");
  seen.push(r.stdout); // "hi\n42\n" (exitCode 0)

  // Live output over SSE: callbacks in the order the code prints; the result still has all of it.
  let live = "";
  await client.execute("for i in range(3): print(i)", {
    onStdout: (s) => {
      live += s;
    },
  });
  seen.push(live); // "0\n1\n2\n"

  // Files: upload, stage into a run or a session, download what the code produced.
  const csv = await client.files.upload("a,b\n1,2\n", "in.csv");
  const out = await client.execute("open('o.txt', 'w').write(open('in.csv').read().upper())", {
    files: [{ path: "in.csv", fileId: csv.id }],
  });
  seen.push(new TextDecoder().decode(await client.files.download(out.files[0]!.fileId))); // "A,B\n1,2\n"

  // Sessions: a container that keeps /workspace and Python state between calls.
  // `await using` deletes it at the end of the scope (a session already gone is fine).
  let id: string;
  {
    await using session = await client.sessions.create({
      files: [{ path: "in.csv", fileId: csv.id }],
      ttlSeconds: 600,
    });
    id = session.id;
    await session.run("rows = open('in.csv').read().splitlines()");
    seen.push((await session.run("len(rows)")).stdout); // "2\n": the variable is still there
    seen.push((await session.bash("ls")).stdout); // "in.csv\n"
    await session.files.write("notes.txt", "hello");
    seen.push(await session.files.readText("notes.txt")); // "hello"
    for await (const entry of session.files.list()) seen.push(`${entry.path} ${entry.kind}`);
    await session.keepalive(600);
  } // ← DELETE /v1/sessions/{id} here

  // Lists are async iterators over cursor pages; errors are typed.
  for await (const s of client.sessions.list()) if (s.id === id) seen.push("still listed");
  await client.sessions.get(id).catch((e: unknown) => {
    if (e instanceof NotFoundError) seen.push(`${e.status}`); // 404: the session is gone
  });
  return seen;
}
