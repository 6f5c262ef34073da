/**
 * `limit` + opaque `cursor` pagination over a list the backend or file store returns whole
 * (sorted here). A cursor is the sort key of the last item of the page it ended, base64url
 * encoded: the next page starts strictly after it, so deleting or adding items between
 * calls never repeats or skips the items that stay.
 */
import { ValidationError } from "@code-interpreter/core";

/** How lists are ordered: a number (a time), then a string (an id or path) as the tie-break. */
export type SortKey = readonly [number, string];

export interface Page<T> {
  items: T[];
  /** Present when there are more items after this page. */
  nextCursor?: string;
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

export function encodeCursor(key: SortKey): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

/** 422 naming `cursor` for anything this API did not hand out. */
export function decodeCursor(cursor: string): SortKey {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw new Error("not base64url");
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  if (
    Array.isArray(parsed) &&
    parsed.length === 2 &&
    typeof parsed[0] === "number" &&
    Number.isFinite(parsed[0]) &&
    typeof parsed[1] === "string"
  ) {
    return [parsed[0], parsed[1]];
  }
  throw new ValidationError(
    "cursor: is not a cursor returned by this list (pass next_cursor back unchanged)",
  );
}

/** Sorts `items` by `keyOf` and returns the page after `cursor` (all of it without `limit`). */
export function paginate<T>(
  items: readonly T[],
  keyOf: (item: T) => SortKey,
  query: { limit?: number | undefined; cursor?: string | undefined },
): Page<T> {
  const keyed = items.map((item) => ({ item, key: keyOf(item) }));
  keyed.sort((a, b) => compareKeys(a.key, b.key));
  let start = 0;
  if (query.cursor !== undefined) {
    const after = decodeCursor(query.cursor);
    start = keyed.findIndex((k) => compareKeys(k.key, after) > 0);
    if (start === -1) start = keyed.length;
  }
  const end = query.limit === undefined ? keyed.length : Math.min(keyed.length, start + query.limit);
  const page: Page<T> = { items: keyed.slice(start, end).map((k) => k.item) };
  if (end < keyed.length && end > start) page.nextCursor = encodeCursor(keyed[end - 1]!.key);
  return page;
}

/** `{ <field>: [...], next_cursor? }` — the shape of every paginated list answer. */
export function pageJson<T, K extends string>(
  field: K,
  page: Page<T>,
): Record<K, T[]> & { next_cursor?: string } {
  const out = { [field]: page.items } as Record<K, T[]> & { next_cursor?: string };
  if (page.nextCursor !== undefined) out.next_cursor = page.nextCursor;
  return out;
}
