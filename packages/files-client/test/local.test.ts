import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, stat, writeFile, chmod, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { buffer as readAll } from "node:stream/consumers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BackendUnavailableError, NotFoundError, PayloadTooLargeError } from "@code-interpreter/core";
import { LocalFileStore, isFileId, sanitizeFilename } from "../src/index.js";
import { HttpFilesClient, createFileStore } from "../src/index.js";

const LIMIT = 64 * 1024;
let root: string;
let dir: string;
let clock: number;
let store: LocalFileStore;

/** A stream that yields `data` in chunks of `size` bytes. */
function chunked(data: Buffer, size = 4096): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "files-client-"));
  dir = join(root, "store", "nested");
  clock = 1_700_000_000_000;
  store = new LocalFileStore({ dir, maxFileBytes: LIMIT, ttlSeconds: 60, now: () => clock });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("LocalFileStore round trips", () => {
  it.each([
    ["random binary (stream)", () => randomBytes(50_000), true],
    ["random binary (buffer)", () => randomBytes(50_000), false],
    ["0 bytes (stream)", () => Buffer.alloc(0), true],
    ["0 bytes (buffer)", () => Buffer.alloc(0), false],
    ["exactly the limit (stream)", () => randomBytes(LIMIT), true],
    ["exactly the limit (buffer)", () => randomBytes(LIMIT), false],
  ])("%s", async (_name, make, asStream) => {
    const data = make();
    const meta = await store.put(asStream ? chunked(data) : data, { filename: "blob.bin", owner: "o1" });
    expect(isFileId(meta.fileId)).toBe(true);
    expect(meta).toMatchObject({ filename: "blob.bin", sizeBytes: data.length, owner: "o1" });
    expect(meta.uploadTime).toBe(clock / 1000);
    const { meta: m2, content } = await store.open(meta.fileId);
    expect(m2).toEqual(meta);
    const back = await readAll(content);
    expect(back.equals(data)).toBe(true);
    expect(await store.stat(meta.fileId)).toEqual(meta);
  });

  it("creates the directory with mode 0700 and keeps data and metadata side by side", async () => {
    const meta = await store.put(Buffer.from("hi"), { filename: "a.txt" });
    const st = await stat(dir);
    expect(st.mode & 0o777).toBe(0o700);
    expect((await readdir(dir)).sort()).toEqual([`${meta.fileId}.bin`, `${meta.fileId}.json`]);
  });

  it("keeps uploadTime as a float in unix seconds", async () => {
    clock = 1_700_000_000_123;
    const meta = await store.put(Buffer.from("x"), { filename: "x" });
    expect(meta.uploadTime).toBeCloseTo(1_700_000_000.123, 6);
  });
});

describe("LocalFileStore size limit", () => {
  it("rejects one byte over the limit while streaming and leaves nothing behind", async () => {
    const data = randomBytes(LIMIT + 1);
    const src = chunked(data, 1000);
    await expect(store.put(src, { filename: "big" })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await readdir(dir)).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  it("rejects an oversize buffer and an oversize sizeHint before writing anything", async () => {
    await expect(store.put(Buffer.alloc(LIMIT + 1), { filename: "big" })).rejects.toMatchObject({
      status: 413,
    });
    const src = chunked(Buffer.alloc(10));
    await expect(store.put(src, { filename: "big", sizeHint: LIMIT + 1 })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect((await readdir(dir).catch(() => [])).length).toBe(0);
    src.destroy();
  });

  it("accepts a stream that lied about its size only up to the limit", async () => {
    const src = chunked(Buffer.alloc(4 * LIMIT));
    await expect(store.put(src, { filename: "liar", sizeHint: 10 })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(await readdir(dir)).toEqual([]);
    // The caller keeps the stream (e.g. an HTTP request to drain before answering 413).
    expect(src.destroyed).toBe(false);
    src.destroy();
  });

  it("a source stream error removes the partial file", async () => {
    async function* broken() {
      yield Buffer.alloc(1000);
      throw new Error("client went away");
    }
    await expect(store.put(Readable.from(broken()), { filename: "x" })).rejects.toThrow("client went away");
    expect(await readdir(dir)).toEqual([]);
  });

  it("a source that errors before reading starts rejects cleanly (no unhandled 'error')", async () => {
    const src = new PassThrough();
    const p = store.put(src, { filename: "x" });
    src.destroy(new Error("client went away early"));
    await expect(p).rejects.toThrow("client went away early");
    expect(await readdir(dir)).toEqual([]);
  });

  it("a zero limit accepts only empty files", async () => {
    const s = new LocalFileStore({ dir, maxFileBytes: 0, ttlSeconds: 60 });
    expect((await s.put(Buffer.alloc(0), { filename: "e" })).sizeBytes).toBe(0);
    await expect(s.put(chunked(Buffer.alloc(1)), { filename: "x" })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
  });
});

describe("LocalFileStore list/stat/open/delete", () => {
  it("lists files oldest first and forgets deleted ones", async () => {
    const a = await store.put(Buffer.from("a"), { filename: "a.txt" });
    clock += 1000;
    const b = await store.put(Buffer.from("bb"), { filename: "b.txt" });
    expect((await store.list()).map((f) => f.fileId)).toEqual([a.fileId, b.fileId]);
    await store.delete(a.fileId);
    expect((await store.list()).map((f) => f.fileId)).toEqual([b.fileId]);
    await expect(store.stat(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.open(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    expect(await readdir(dir)).not.toContain(`${a.fileId}.bin`);
  });

  it("delete twice → NotFoundError", async () => {
    const a = await store.put(Buffer.from("a"), { filename: "a.txt" });
    await store.delete(a.fileId);
    await expect(store.delete(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("concurrent deletes: exactly one wins", async () => {
    const a = await store.put(Buffer.from("a"), { filename: "a.txt" });
    const results = await Promise.allSettled([
      store.delete(a.fileId),
      store.delete(a.fileId),
      store.delete(a.fileId),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(NotFoundError);
  });

  it("an open stream still reads after the file is deleted", async () => {
    const data = randomBytes(20_000);
    const a = await store.put(data, { filename: "a" });
    const { content } = await store.open(a.fileId);
    await store.delete(a.fileId);
    expect((await readAll(content)).equals(data)).toBe(true);
  });

  it("lists nothing (and does not fail) before the directory exists", async () => {
    expect(await store.list()).toEqual([]);
    expect(await store.sweep()).toBe(0);
  });

  it("unknown but well-formed ids → NotFoundError", async () => {
    const id = "0".repeat(32);
    await expect(store.stat(id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.open(id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete(id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("ignores corrupt metadata and stray files", async () => {
    const a = await store.put(Buffer.from("a"), { filename: "a" });
    await writeFile(join(dir, `${"f".repeat(32)}.json`), "{not json");
    await writeFile(join(dir, "README"), "hello");
    expect((await store.list()).map((f) => f.fileId)).toEqual([a.fileId]);
    await expect(store.stat("f".repeat(32))).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("LocalFileStore filenames", () => {
  it.each([
    ["report.csv", "report.csv"],
    ["../../etc/passwd", ".._.._etc_passwd"],
    ["C:\\Users\\me\\data.csv", "C:_Users_me_data.csv"],
    ["a\0b\nc\td\x7f", "abcd"],
    ["évè 日本語 😀.txt", "évè 日本語 😀.txt"],
    ["evil\u202Etxt.exe", "eviltxt.exe"],
    ["", "file"],
    ["..", "__"],
    ["  spaced  ", "spaced"],
  ])("%j is shown as %j", async (given, shown) => {
    expect(sanitizeFilename(given)).toBe(shown);
    const meta = await store.put(Buffer.from("x"), { filename: given });
    expect(meta.filename).toBe(shown);
    expect((await store.stat(meta.fileId)).filename).toBe(shown);
  });

  it("caps very long names at 255 characters without splitting surrogate pairs", () => {
    const s = sanitizeFilename("😀".repeat(300));
    expect(Array.from(s)).toHaveLength(255);
    expect(s).toBe("😀".repeat(255));
  });
});

describe("LocalFileStore TTL", () => {
  it("expired files are invisible at once and swept later", async () => {
    const a = await store.put(Buffer.from("old"), { filename: "old" });
    clock += 30_000;
    const b = await store.put(Buffer.from("new"), { filename: "new" });
    clock += 29_999;
    expect((await store.list()).map((f) => f.fileId)).toEqual([a.fileId, b.fileId]);
    clock += 1; // a is now exactly 60 s old
    await expect(store.stat(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.open(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.list()).map((f) => f.fileId)).toEqual([b.fileId]);
    // Still on disk until swept.
    expect(await readdir(dir)).toContain(`${a.fileId}.bin`);
    expect(await store.sweep()).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([`${b.fileId}.bin`, `${b.fileId}.json`]);
    expect(await store.sweep(clock + 30_000)).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it("sweep removes stale temp files and orphaned data, but not fresh ones", async () => {
    await store.put(Buffer.from("x"), { filename: "x" });
    const staleTmp = join(dir, ".tmp-dead-data-1");
    const freshTmp = join(dir, ".tmp-live-data-2");
    const orphan = join(dir, `${"b".repeat(32)}.bin`);
    for (const p of [staleTmp, freshTmp, orphan]) await writeFile(p, "junk");
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(staleTmp, old, old);
    await utimes(orphan, old, old);
    expect(await store.sweep()).toBe(0);
    const left = await readdir(dir);
    expect(left).toContain(".tmp-live-data-2");
    expect(left).not.toContain(".tmp-dead-data-1");
    expect(left).not.toContain(`${"b".repeat(32)}.bin`);
  });
});

describe("LocalFileStore owners", () => {
  it("a file of owner X is not found for owner Y; undefined owner sees everything", async () => {
    const x = await store.put(Buffer.from("x"), { filename: "x", owner: "owner-x" });
    const n = await store.put(Buffer.from("n"), { filename: "n" });
    expect(n.owner).toBeNull();
    await expect(store.stat(x.fileId, "owner-y")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.open(x.fileId, "owner-y")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete(x.fileId, "owner-y")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.stat(x.fileId, null)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.stat(n.fileId, "owner-x")).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.stat(x.fileId, "owner-x")).owner).toBe("owner-x");
    expect((await store.list("owner-x")).map((f) => f.fileId)).toEqual([x.fileId]);
    expect((await store.list(null)).map((f) => f.fileId)).toEqual([n.fileId]);
    expect((await store.list("owner-y")).map((f) => f.fileId)).toEqual([]);
    expect(await store.list()).toHaveLength(2);
    await store.delete(x.fileId, "owner-x");
    await store.delete(n.fileId);
    expect(await store.list()).toEqual([]);
  });
});

describe("LocalFileStore concurrency", () => {
  it("concurrent puts each get their own id and exact bytes", async () => {
    const inputs = Array.from({ length: 25 }, (_, i) => randomBytes(1000 + i * 997));
    const metas = await Promise.all(
      inputs.map((d, i) => store.put(i % 2 ? chunked(d, 333) : d, { filename: `f${i}` })),
    );
    expect(new Set(metas.map((m) => m.fileId)).size).toBe(inputs.length);
    const backs = await Promise.all(metas.map(async (m) => readAll((await store.open(m.fileId)).content)));
    backs.forEach((b, i) => expect(b.equals(inputs[i]!)).toBe(true));
    expect(await store.list()).toHaveLength(inputs.length);
    expect((await readdir(dir)).filter((n) => n.startsWith(".tmp-"))).toEqual([]);
  });
});

describe("LocalFileStore ping and options", () => {
  it("ping creates the directory and succeeds when writable", async () => {
    await store.ping();
    expect((await stat(dir)).isDirectory()).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it("ping fails with BackendUnavailableError when the directory is not writable", async () => {
    if (process.getuid?.() === 0) {
      // Root ignores file modes: use a directory no one can create files in (procfs).
      const s = new LocalFileStore({ dir: "/proc/self/fdinfo", maxFileBytes: 10, ttlSeconds: 10 });
      await expect(s.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
      return;
    }
    await store.ping();
    await chmod(dir, 0o500);
    try {
      await expect(store.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
    } finally {
      await chmod(dir, 0o700);
    }
  });

  it("ping fails with BackendUnavailableError when the path is a file", async () => {
    const file = join(root, "plain-file");
    await writeFile(file, "x");
    const s = new LocalFileStore({ dir: file, maxFileBytes: 10, ttlSeconds: 10 });
    await expect(s.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it("rejects nonsense options", () => {
    expect(() => new LocalFileStore({ dir, maxFileBytes: -1, ttlSeconds: 1 })).toThrow(/maxFileBytes/);
    expect(() => new LocalFileStore({ dir, maxFileBytes: 1, ttlSeconds: 0 })).toThrow(/ttlSeconds/);
    expect(() => new LocalFileStore({ dir: "", maxFileBytes: 1, ttlSeconds: 1 })).toThrow(/dir/);
  });

  it("createFileStore picks the store by url", () => {
    const local = createFileStore({ dir, maxFileBytes: 5, ttlSeconds: 9 });
    expect(local).toBeInstanceOf(LocalFileStore);
    expect(local.maxFileBytes).toBe(5);
    const remote = createFileStore({ url: "http://127.0.0.1:1", dir, maxFileBytes: 5, ttlSeconds: 9 });
    expect(remote).toBeInstanceOf(HttpFilesClient);
  });
});
