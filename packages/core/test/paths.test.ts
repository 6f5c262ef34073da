import { describe, expect, it } from "vitest";
import {
  PATH_LIMITS,
  ValidationError,
  assertSafeWorkspacePath,
  assertUniqueSafePaths,
  isSafeWorkspacePath,
  workspacePathProblem,
} from "./core.js";

// 255 + 1 + 255 + 1 + 255 + 1 + 254 + 2 = 1024 characters, no segment over 255.
const exactlyMaxLength = ["a".repeat(255), "b".repeat(255), "c".repeat(255), "d".repeat(254), "e"].join("/");
const exactlyMaxDepth = Array.from({ length: PATH_LIMITS.maxDepth }, () => "d").join("/");

describe("workspace paths: accepted", () => {
  it.each([
    "a.txt",
    "data/in.csv",
    "a/b/c/d.txt",
    "日本語/データ.csv",
    "émoji-😀.txt",
    "name with spaces.txt",
    "dir with spaces/file name.txt",
    ".hidden",
    "dir/.hidden/x",
    "...",
    "a..b",
    "-dash",
    "x".repeat(PATH_LIMITS.maxSegmentLength),
    exactlyMaxLength,
    exactlyMaxDepth,
  ])("%j", (p) => {
    expect(workspacePathProblem(p)).toBeNull();
    expect(isSafeWorkspacePath(p)).toBe(true);
    expect(assertSafeWorkspacePath(p)).toBe(p);
  });

  it("the limits used above are the real boundaries", () => {
    expect(exactlyMaxLength).toHaveLength(PATH_LIMITS.maxLength);
    expect(exactlyMaxDepth.split("/")).toHaveLength(PATH_LIMITS.maxDepth);
  });
});

describe("workspace paths: rejected with 422 naming the path", () => {
  it.each<[string, unknown, RegExp]>([
    ["empty", "", /empty/],
    ["absolute", "/abs", /relative/],
    ["absolute /etc/passwd", "/etc/passwd", /relative/],
    ["parent", "../x", /'\.\.'/],
    ["only parent", "..", /'\.\.'/],
    ["parent in the middle", "a/../b", /'\.\.'/],
    ["parent at the end", "a/..", /'\.\.'/],
    ["double slash", "a//b", /empty segment/],
    ["dot segment", "a/./b", /'\.' segments/],
    ["leading dot segment", "./a", /'\.' segments/],
    ["only dot", ".", /'\.' segments/],
    ["trailing slash", "a/", /empty segment/],
    ["NUL", "a\0b", /NUL/],
    ["backslash", "a\\b", /forward slashes/],
    ["windows drive", "C:\\x", /relative/],
    ["windows drive, forward slash", "c:/x", /relative/],
    ["tab", "a\tb", /control/],
    ["newline", "a\nb", /control/],
    ["escape", "a\x1b[31mb", /control/],
    ["DEL", "a\x7fb", /control/],
    ["too long", "a/".repeat(PATH_LIMITS.maxLength / 2) + "a", /longer than 1024/],
    ["too long by one", exactlyMaxLength + "e", /longer than 1024/],
    ["too deep", exactlyMaxDepth + "/d", /deeper than 32/],
    ["segment too long", "x".repeat(PATH_LIMITS.maxSegmentLength + 1), /segment is longer than 255/],
  ])("%s", (_name, p, reason) => {
    const problem = workspacePathProblem(p);
    expect(problem).toMatch(reason);
    expect(isSafeWorkspacePath(p)).toBe(false);
    let caught: unknown;
    try {
      assertSafeWorkspacePath(p);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const err = caught as ValidationError;
    expect(err.status).toBe(422);
    expect(err.message).toContain(JSON.stringify(p));
    expect(err.message).toContain(problem!);
    expect(err.message.startsWith("path ")).toBe(true);
  });

  it.each([undefined, null, 42, {}, ["a"]])("non-string %j", (p) => {
    expect(workspacePathProblem(p)).toBe("path must be a string");
    expect(() => assertSafeWorkspacePath(p)).toThrow(ValidationError);
  });

  it("names the field it was given", () => {
    expect(() => assertSafeWorkspacePath("../x", "files[3].path")).toThrow(
      /^files\[3\]\.path "\.\.\/x" is unsafe/,
    );
  });
});

describe("assertUniqueSafePaths", () => {
  it("accepts distinct safe paths (and an empty list)", () => {
    expect(() => assertUniqueSafePaths(["a.txt", "b.txt", "dir/a.txt"])).not.toThrow();
    expect(() => assertUniqueSafePaths([])).not.toThrow();
  });

  it("rejects a duplicate, naming its index and path", () => {
    expect(() => assertUniqueSafePaths(["a.txt", "b.txt", "a.txt"])).toThrow(ValidationError);
    expect(() => assertUniqueSafePaths(["a.txt", "b.txt", "a.txt"])).toThrow(
      'files[2].path "a.txt" is given twice',
    );
  });

  it("rejects an unsafe entry, naming its index", () => {
    expect(() => assertUniqueSafePaths(["ok.txt", "/etc/passwd"], "staged")).toThrow(
      /^staged\[1\]\.path "\/etc\/passwd" is unsafe/,
    );
  });

  it("paths differing only in case are different files", () => {
    expect(() => assertUniqueSafePaths(["A.txt", "a.txt"])).not.toThrow();
  });
});
