/** POST /v1/sessions/{id}/files {path, file_id}: a stored file copied into a running session. */
import request from "supertest";
import { describe, expect, it } from "vitest";
import { binaryParser, makeApp } from "./helpers.js";

const UNKNOWN = "code-session-3f2b8c1e-9a4d-4e7f-8b2a-1c2d3e4f5a6b";

describe("POST /v1/sessions/{id}/files", () => {
  it("copies the stored bytes to the path → 201 {path, size_bytes}; the file is then readable", async () => {
    const { app, files } = makeApp();
    const bytes = Buffer.from([0, 1, 2, 255, 13, 10, 42]);
    const fileId = await files.add(bytes, "blob.bin");
    const id = (await request(app).post("/v1/sessions").expect(201)).body.session_id as string;

    const res = await request(app)
      .post(`/v1/sessions/${id}/files`)
      .send({ path: "in/copy.bin", file_id: fileId })
      .expect(201);
    expect(res.body).toEqual({ path: "in/copy.bin", size_bytes: bytes.length });

    const got = await request(app)
      .get(`/v1/sessions/${id}/files/in/copy.bin`)
      .buffer(true)
      .parse(binaryParser)
      .expect(200);
    expect(Buffer.compare(got.body as Buffer, bytes)).toBe(0);
    // The stored file is still there.
    await request(app).get(`/v1/files/${fileId}`).expect(200);
  });

  it("404 for an unknown or foreign file_id and for an unknown session; 422 for unsafe paths or bad fields", async () => {
    const { app, files, backend } = makeApp({ env: { API_KEYS: "k1,k2" } });
    const auth = (k: string) => ({ Authorization: `Bearer ${k}` });
    const foreign = await files.add("theirs", "t.txt", "not-my-owner");
    const id = (await request(app).post("/v1/sessions").set(auth("k1")).expect(201)).body
      .session_id as string;
    const mine = (
      await request(app)
        .post("/v1/files")
        .set(auth("k1"))
        .attach("file", Buffer.from("mine"), "m.txt")
        .expect(201)
    ).body.file_id as string;
    const writes = () => backend.callsTo("writeSessionFile").length;

    const post = (sid: string, body: unknown, key = "k1") =>
      request(app)
        .post(`/v1/sessions/${sid}/files`)
        .set(auth(key))
        .send(body as object);

    expect((await post(id, { path: "a.txt", file_id: "nope" })).status).toBe(404);
    expect((await post(id, { path: "a.txt", file_id: foreign })).status).toBe(404);
    expect((await post(UNKNOWN, { path: "a.txt", file_id: mine })).status).toBe(404);
    expect((await post(id, { path: "a.txt", file_id: mine }, "k2")).status).toBe(404);
    expect((await post("not-a-session", { path: "a.txt", file_id: mine })).status).toBe(404);
    const before = writes();
    for (const path of ["../x", "/etc/passwd", "a//b", "", ".", "a/\u0000"]) {
      const res = await post(id, { path, file_id: mine });
      expect(res.status, `${JSON.stringify(path)}: ${res.text}`).toBe(422);
      expect(res.body.detail).toMatch(/^path /);
    }
    for (const body of [
      {},
      { path: "a" },
      { file_id: mine },
      { path: 1, file_id: mine },
      { path: "a", file_id: "" },
      [],
    ]) {
      expect((await post(id, body)).status, JSON.stringify(body)).toBe(422);
    }
    // Nothing invalid reached the backend.
    expect(writes()).toBe(before);
    expect((await post(id, { path: "ok.txt", file_id: mine })).status).toBe(201);
    expect(writes()).toBe(before + 1);
  });
});
