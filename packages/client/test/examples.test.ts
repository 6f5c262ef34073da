/** The README's example (examples/quickstart.ts) runs against the real server and engine. */
import { expect, it } from "vitest";
import { quickstart } from "../examples/quickstart.js";
import { startTestServer } from "./server.js";

it(
  "examples/quickstart.ts runs: one-shot, streaming, files, a session that remembers",
  { timeout: 180_000 },
  async () => {
    const server = await startTestServer();
    try {
      await expect(quickstart(server.baseUrl)).resolves.toEqual([
        "hi\n42\n",
        "0\n1\n2\n",
        "A,B\n1,2\n",
        "2\n",
        "in.csv\n",
        "hello",
        "in.csv file",
        "notes.txt file",
        "404",
      ]);
    } finally {
      await server.close();
    }
  },
);
