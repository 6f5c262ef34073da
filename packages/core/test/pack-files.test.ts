import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { packFiles } from "../src/exec-runner.js";

describe("packFiles", () => {
  it.each([
    ["open() rejects", () => Promise.reject(new Error("no such upload"))],
    [
      "the stream errors",
      () =>
        Promise.resolve(
          new Readable({
            read() {
              this.destroy(new Error("disk on fire"));
            },
          }),
        ),
    ],
  ])("fails the returned stream when %s, even before it is read", async (_name, open) => {
    const out = packFiles([{ path: "a.bin", size: 10, open }]);
    // Like stageFiles: listen at once, start reading only later (after an exec round trip).
    const err = new Promise<Error>((resolve) => out.on("error", resolve));
    await new Promise((r) => setTimeout(r, 50));
    out.resume();
    expect((await err).message).toMatch(/no such upload|disk on fire/);
    expect(out.destroyed).toBe(true);
  });
});
