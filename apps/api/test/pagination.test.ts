/** limit + opaque cursor on GET /v1/sessions, GET /v1/files and GET /v1/sessions/{id}/files. */
import request from "supertest";
import { describe, expect, it } from "vitest";
import { makeApp } from "./helpers.js";

/** Follows next_cursor page by page; returns the pages' item keys. */
async function walk(
  app: Parameters<typeof request>[0],
  path: string,
  field: string,
  key: string,
  limit: number,
): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const q = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    const res = await request(app).get(`${path}?${q}`).expect(200);
    const items = res.body[field] as Array<Record<string, unknown>>;
    expect(items.length).toBeLessThanOrEqual(limit);
    pages.push(items.map((it) => String(it[key])));
    if (res.body.next_cursor === undefined) return pages;
    expect(typeof res.body.next_cursor).toBe("string");
    cursor = res.body.next_cursor as string;
  }
  throw new Error("no last page");
}

describe("pagination", () => {
  it("GET /v1/sessions: pages in created order, each item once, next_cursor only when there is more", async () => {
    let now = 1_700_000_000_000;
    const { app } = makeApp({ backend: { now: () => now } });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      now += 1000;
      ids.push((await request(app).post("/v1/sessions").expect(201)).body.session_id as string);
    }
    const all = await request(app).get("/v1/sessions").expect(200);
    expect(all.body.next_cursor).toBeUndefined();
    expect((all.body.sessions as Array<{ session_id: string }>).map((s) => s.session_id)).toEqual(ids);

    const pages = await walk(app, "/v1/sessions", "sessions", "session_id", 3);
    expect(pages).toEqual([ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)]);
    // Exactly a page's worth: no cursor on the last full page.
    expect(await walk(app, "/v1/sessions", "sessions", "session_id", 7)).toEqual([ids]);
  });

  it("a cursor stays valid when items are deleted or added between pages", async () => {
    let now = 1_700_000_000_000;
    const { app } = makeApp({ backend: { now: () => now } });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      now += 1000;
      ids.push((await request(app).post("/v1/sessions").expect(201)).body.session_id as string);
    }
    const first = await request(app).get("/v1/sessions?limit=2").expect(200);
    // The last item of the page is deleted, a new one is added at the end.
    await request(app).delete(`/v1/sessions/${ids[1]}`).expect(204);
    now += 1000;
    const added = (await request(app).post("/v1/sessions").expect(201)).body.session_id as string;
    const rest = await request(app)
      .get(`/v1/sessions?cursor=${first.body.next_cursor as string}`)
      .expect(200);
    expect((rest.body.sessions as Array<{ session_id: string }>).map((s) => s.session_id)).toEqual([
      ...ids.slice(2),
      added,
    ]);
  });

  it("GET /v1/files pages by upload time, then id", async () => {
    const { app, files } = makeApp();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await files.add(`f${i}`, `f${i}.txt`));
    const expected = [...files.files.values()]
      .map((f) => f.meta)
      .sort((a, b) => a.uploadTime - b.uploadTime || (a.fileId < b.fileId ? -1 : 1))
      .map((m) => m.fileId);
    expect(expected.sort()).toEqual([...ids].sort());
    const pages = await walk(app, "/v1/files", "files", "file_id", 2);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat().sort()).toEqual([...ids].sort());
  });

  it("GET /v1/sessions/{id}/files pages by path", async () => {
    const { app } = makeApp();
    const id = (await request(app).post("/v1/sessions").expect(201)).body.session_id as string;
    for (const p of ["b.txt", "a.txt", "c/d.txt", "e.txt"]) {
      await request(app).put(`/v1/sessions/${id}/files/${p}`).send("x").expect(201);
    }
    const all = (await request(app).get(`/v1/sessions/${id}/files`).expect(200)).body.files as Array<{
      path: string;
    }>;
    const paths = all.map((f) => f.path);
    expect(paths).toEqual([...paths].sort());
    const pages = await walk(app, `/v1/sessions/${id}/files`, "files", "path", 2);
    expect(pages.flat()).toEqual(paths);
    expect(pages.every((p) => p.length <= 2)).toBe(true);
  });

  it("a bad limit or cursor → 422 naming it, for every list", async () => {
    const { app } = makeApp();
    const id = (await request(app).post("/v1/sessions").expect(201)).body.session_id as string;
    for (const path of ["/v1/sessions", "/v1/files", `/v1/sessions/${id}/files`]) {
      for (const q of ["limit=0", "limit=1001", "limit=1.5", "limit=abc", "limit=1&limit=2", "limit="]) {
        const res = await request(app).get(`${path}?${q}`);
        expect(res.status, `${path}?${q}: ${res.text}`).toBe(422);
        expect(res.body.detail).toMatch(/^limit: /);
      }
      for (const q of [
        "cursor=nope!",
        "cursor=",
        "cursor=bm90IGpzb24",
        "cursor=WzEsMl0",
        "cursor=a&cursor=b",
      ]) {
        const res = await request(app).get(`${path}?${q}`);
        expect(res.status, `${path}?${q}: ${res.text}`).toBe(422);
        expect(res.body.detail).toMatch(/^cursor: /);
      }
    }
  });
});
