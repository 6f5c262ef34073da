/**
 * File ids and display names. Ids are the only thing that ever becomes part of a path on
 * disk, so they are checked against a strict pattern before any filesystem call.
 */
import { randomBytes } from "node:crypto";

/** 32 lowercase hex characters (128 random bits). */
const FILE_ID_RE = /^[0-9a-f]{32}$/;

export function newFileId(): string {
  return randomBytes(16).toString("hex");
}

/** True only for ids LocalFileStore could have issued; anything else cannot name a file. */
export function isFileId(value: unknown): value is string {
  return typeof value === "string" && FILE_ID_RE.test(value);
}

export const MAX_FILENAME_LENGTH = 255;

// C0/C1 controls, DEL, line/paragraph separators and the bidi overrides/isolates that can
// make a name display as something it is not.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * A display name for an upload: the caller's name with control characters removed and path
 * separators replaced by "_", so it can never be read as a path. Never empty.
 */
export function sanitizeFilename(name: unknown): string {
  let s = typeof name === "string" ? name : "";
  s = s.replace(UNSAFE_CHARS, "").replace(/[/\\]/g, "_").trim();
  // Cut by code points so a surrogate pair is never split.
  const chars = Array.from(s);
  if (chars.length > MAX_FILENAME_LENGTH) s = chars.slice(0, MAX_FILENAME_LENGTH).join("");
  if (s === "" || s === "." || s === "..") return s === "" ? "file" : s.replace(/\./g, "_");
  return s;
}
