/**
 * The README's usage example, as a file this package's tests compile and run
 * (test/examples.test.ts; `remoteUrl` is a `/v1/files` server the test starts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { NotFoundError, ownerTag } from "@code-interpreter/core";
// In your project: import { ... } from "@code-interpreter/files-client";
import { HttpFilesClient, createFileStore } from "../src/index.js";

export async function quickstart(
  remoteUrl: string,
): Promise<{ local: string; otherOwnerSees: boolean; remote: string }> {
  const dir = await mkdtemp(join(tmpdir(), "files-example-"));
  try {
    // From the server's config (FILE_SERVICE_URL, FILE_STORAGE_DIR, MAX_FILE_SIZE_MB,
    // FILE_TTL_SEC): an HttpFilesClient when `url` is set, else a LocalFileStore in `dir`.
    const store = createFileStore({ url: undefined, dir, maxFileBytes: 100 * 2 ** 20, ttlSeconds: 3600 });

    // `owner` is ownerTag(apiKey), or null without API keys: other owners get NotFoundError.
    const owner = ownerTag("my-api-key");
    const upload = Readable.from([Buffer.from("a,b\n1,2\n")]); // any Readable, e.g. a request
    const meta = await store.put(upload, { filename: "data.csv", owner });
    const { content } = await store.open(meta.fileId, owner); // in a server: pipeline(content, res)
    const local = (await buffer(content)).toString();
    const otherOwnerSees = await store.stat(meta.fileId, ownerTag("another key")).then(
      () => true,
      (e: unknown) => !(e instanceof NotFoundError),
    );
    await store.delete(meta.fileId, owner);

    // Any /v1/files server (this API, or the public onyx one), through the same interface:
    const remote = new HttpFilesClient({ baseUrl: remoteUrl /* , apiKey: process.env.FILES_KEY */ });
    const up = await remote.put(Buffer.from("hello"), { filename: "hello.txt" });
    const back = (await buffer((await remote.open(up.fileId)).content)).toString();
    await remote.delete(up.fileId);

    return { local, otherOwnerSees, remote: back };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
