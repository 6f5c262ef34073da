/** Cursor pagination (`limit` + `cursor` → `next_cursor`) as an async iterator. */

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; undefined on the last page. */
  nextCursor: string | undefined;
}

export interface PageOptions {
  /**
   * Items per request (the server accepts 1–1000).
   * @default 100
   */
  pageSize?: number;
  /**
   * Start after this cursor (a `nextCursor` of an earlier page).
   * @default undefined (from the start)
   */
  cursor?: string | undefined;
  /** @default undefined */
  signal?: AbortSignal | undefined;
}

/**
 * Every item of a list, fetched page by page as it is iterated:
 * `for await (const s of client.sessions.list()) ...`, or `await list.toArray()`.
 */
export class Pager<T> implements AsyncIterable<T> {
  constructor(
    private readonly fetchPage: (cursor: string | undefined, limit: number) => Promise<Page<T>>,
    private readonly opts: PageOptions = {},
  ) {}

  /** The pages themselves, for callers who keep the cursor. */
  async *pages(): AsyncGenerator<Page<T>> {
    let cursor = this.opts.cursor;
    const limit = this.opts.pageSize ?? 100;
    for (;;) {
      const page = await this.fetchPage(cursor, limit);
      yield page;
      if (!page.nextCursor || page.items.length === 0) return;
      cursor = page.nextCursor;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for await (const page of this.pages()) yield* page.items;
  }

  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }
}
