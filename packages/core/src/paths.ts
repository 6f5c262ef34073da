/**
 * Workspace path safety. Every path a caller names (staged files, session file routes) is
 * relative to /workspace and must not be able to leave it, whatever the executor does with it.
 */
import { ValidationError } from "./errors.js";

export const WORKSPACE_DIR = "/workspace";
export const PATH_LIMITS = { maxLength: 1024, maxDepth: 32, maxSegmentLength: 255 };

/** Returns a reason the path is unsafe, or null when it is fine. */
export function workspacePathProblem(path: unknown): string | null {
  if (typeof path !== "string") return "path must be a string";
  if (path.length === 0) return "path is empty";
  if (path.length > PATH_LIMITS.maxLength) return `path is longer than ${PATH_LIMITS.maxLength} characters`;
  if (path.includes("\0")) return "path contains a NUL byte";
  if (path.startsWith("/") || /^[a-zA-Z]:[\\/]/.test(path)) return "path must be relative to the workspace";
  if (path.includes("\\")) return "path must use forward slashes";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) return "path contains control characters";
  const segments = path.split("/");
  if (segments.length > PATH_LIMITS.maxDepth) return `path is deeper than ${PATH_LIMITS.maxDepth} levels`;
  for (const s of segments) {
    if (s === "") return "path has an empty segment";
    if (s === "..") return "path must not contain '..'";
    if (s === ".") return "path must not contain '.' segments";
    if (s.length > PATH_LIMITS.maxSegmentLength) {
      return `a path segment is longer than ${PATH_LIMITS.maxSegmentLength} characters`;
    }
  }
  return null;
}

export function isSafeWorkspacePath(path: unknown): path is string {
  return workspacePathProblem(path) === null;
}

/** Throws ValidationError (422) naming the path and the problem. */
export function assertSafeWorkspacePath(path: unknown, field = "path"): string {
  const problem = workspacePathProblem(path);
  if (problem !== null) throw new ValidationError(`${field} ${JSON.stringify(path)} is unsafe: ${problem}`);
  return path as string;
}

/** Rejects a list of staged files with unsafe or duplicate paths. */
export function assertUniqueSafePaths(paths: readonly string[], field = "files"): void {
  const seen = new Set<string>();
  paths.forEach((p, i) => {
    assertSafeWorkspacePath(p, `${field}[${i}].path`);
    if (seen.has(p)) throw new ValidationError(`${field}[${i}].path ${JSON.stringify(p)} is given twice`);
    seen.add(p);
  });
}
