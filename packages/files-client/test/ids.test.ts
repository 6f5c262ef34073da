// Bad ids must be refused before any filesystem call: every fs/promises function is wrapped
// in a spy here (vi.mock applies to the store's own import too).
import { mkdtemp, rm } from "node:fs/promises";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { NotFoundError } from "@code-interpreter/core";
import { LocalFileStore, isFileId, newFileId } from "../src/index.js";

vi.mock("node:fs/promises", async (importOriginal) => {
  const orig = await importOriginal<Record<string, unknown>>();
  const wrapped: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(orig)) {
    wrapped[k] = typeof v === "function" && k !== "default" ? vi.fn(v as (...a: unknown[]) => unknown) : v;
  }
  return { ...wrapped, default: wrapped };
});

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "files-client-ids-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const fsCalls = (): number =>
  Object.values(fsp).reduce<number>(
    (n, f) =>
      n + (vi.isMockFunction(f) ? (f as unknown as { mock: { calls: unknown[] } }).mock.calls.length : 0),
    0,
  );

describe("file ids", () => {
  it("are 32 lowercase hex characters and unique", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newFileId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(isFileId(id)).toBe(true);
  });

  it.each<[string, unknown]>([
    ["../etc/passwd", "../etc/passwd"],
    ["/etc/passwd", "/etc/passwd"],
    ["NUL", "a\0b"],
    ["NUL inside a valid-looking id", `${"a".repeat(16)}\0${"a".repeat(15)}`],
    ["empty", ""],
    ["too long", "a".repeat(33)],
    ["very long", "a".repeat(10_000)],
    ["too short", "a".repeat(31)],
    ["upper case", "A".repeat(32)],
    ["traversal ending in a valid id", `../${"a".repeat(32)}`],
    ["valid id plus extension", `${"a".repeat(32)}.json`],
    ["trailing newline", `${"a".repeat(32)}\n`],
    ["not a string", 42],
  ])("%s → NotFoundError without touching the disk", async (_name, id) => {
    const store = new LocalFileStore({ dir: join(root, "store"), maxFileBytes: 10, ttlSeconds: 10 });
    vi.clearAllMocks();
    expect(isFileId(id)).toBe(false);
    await expect(store.stat(id as string)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.open(id as string, "owner")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete(id as string)).rejects.toBeInstanceOf(NotFoundError);
    expect(fsCalls()).toBe(0);
  });

  it("the spy does see real accesses (sanity check)", async () => {
    const store = new LocalFileStore({ dir: join(root, "store"), maxFileBytes: 10, ttlSeconds: 10 });
    vi.clearAllMocks();
    await expect(store.stat("0".repeat(32))).rejects.toBeInstanceOf(NotFoundError);
    expect(fsCalls()).toBeGreaterThan(0);
  });

  it("error messages stay short for huge ids", async () => {
    const store = new LocalFileStore({ dir: join(root, "store"), maxFileBytes: 10, ttlSeconds: 10 });
    const err = await store.stat("x".repeat(100_000)).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message.length).toBeLessThan(200);
  });
});
