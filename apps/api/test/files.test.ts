import request from "supertest";
import { describe, expect, it } from "vitest";
import { makeApp, binaryParser } from "./helpers.js";

describe("/v1/files", () => {
  it("round-trips binary bytes exactly: upload, list, download, delete", async () => {
    const { app, files } = makeApp();
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const up = await request(app).post("/v1/files").attach("file", bytes, "all-bytes.bin").expect(201);
    expect(up.body).toEqual({ file_id: expect.any(String), filename: "all-bytes.bin", size_bytes: 256 });
    const id = up.body.file_id as string;
    expect(files.files.get(id)?.bytes.equals(bytes)).toBe(true);

    const list = await request(app).get("/v1/files").expect(200);
    expect(list.body.files).toHaveLength(1);
    expect(list.body.files[0]).toEqual({
      file_id: id,
      filename: "all-bytes.bin",
      size_bytes: 256,
      upload_time: expect.any(Number),
    });
    expect(Number.isInteger(list.body.files[0].upload_time)).toBe(false);

    const down = await request(app).get(`/v1/files/${id}`).buffer(true).parse(binaryParser).expect(200);
    expect(down.headers["content-type"]).toBe("application/octet-stream");
    expect(down.headers["content-disposition"]).toBe('attachment; filename="all-bytes.bin"');
    expect(down.headers["content-length"]).toBe("256");
    expect(Buffer.compare(down.body as Buffer, bytes)).toBe(0);

    await request(app).delete(`/v1/files/${id}`).expect(204);
    await request(app).get(`/v1/files/${id}`).expect(404);
    await request(app).delete(`/v1/files/${id}`).expect(404);
    expect((await request(app).get("/v1/files").expect(200)).body).toEqual({ files: [] });
  });

  it("stores a zero-byte file", async () => {
    const { app } = makeApp();
    const up = await request(app).post("/v1/files").attach("file", Buffer.alloc(0), "empty.txt").expect(201);
    expect(up.body.size_bytes).toBe(0);
    const down = await request(app)
      .get(`/v1/files/${up.body.file_id}`)
      .buffer(true)
      .parse(binaryParser)
      .expect(200);
    expect((down.body as Buffer).length).toBe(0);
  });

  it("accepts a file of exactly the limit and rejects one byte more with 413, storing nothing", async () => {
    const { app, files } = makeApp({ maxFileBytes: 1024 });
    const atLimit = Buffer.alloc(1024, 7);
    const ok = await request(app).post("/v1/files").attach("file", atLimit, "max.bin").expect(201);
    expect(ok.body.size_bytes).toBe(1024);
    expect(files.files.size).toBe(1);

    const over = await request(app)
      .post("/v1/files")
      .attach("file", Buffer.alloc(1025, 7), "big.bin")
      .expect(413);
    expect(over.body).toEqual({ detail: expect.stringContaining("1024") });
    expect(files.files.size).toBe(1);
  });

  it("rejects a much larger file with 413 and stores nothing", async () => {
    const { app, files } = makeApp({ maxFileBytes: 1024 });
    await request(app)
      .post("/v1/files")
      .attach("file", Buffer.alloc(512 * 1024, 1), "huge.bin")
      .expect(413);
    expect(files.files.size).toBe(0);
  });

  it("needs the multipart field `file` (422 otherwise)", async () => {
    const { app, files } = makeApp();
    const wrong = await request(app)
      .post("/v1/files")
      .attach("upload", Buffer.from("x"), "x.txt")
      .expect(422);
    expect(wrong.body.detail).toMatch(/"file"/);
    const none = await request(app).post("/v1/files").send({ hello: 1 }).expect(422);
    expect(none.body.detail).toMatch(/file/);
    expect(files.files.size).toBe(0);
  });

  it("answers 400 JSON for a broken multipart body", async () => {
    const { app } = makeApp();
    const res = await request(app)
      .post("/v1/files")
      .set("Content-Type", "multipart/form-data; boundary=XYZ")
      .send('--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc')
      .expect(400);
    expect(res.body.detail).toMatch(/multipart/);
  });

  it("quotes names safely and adds filename* for non-ASCII names", async () => {
    const { app } = makeApp();
    const up = await request(app)
      .post("/v1/files")
      .attach("file", Buffer.from("x"), 'résumé "final".txt')
      .expect(201);
    expect(up.body.filename).toBe('résumé "final".txt');
    const down = await request(app)
      .get(`/v1/files/${up.body.file_id}`)
      .buffer(true)
      .parse(binaryParser)
      .expect(200);
    expect(down.headers["content-disposition"]).toBe(
      `attachment; filename="r_sum_ _final_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt`,
    );
  });

  it("answers 404 JSON for unknown ids", async () => {
    const { app } = makeApp();
    const res = await request(app).get("/v1/files/0123456789abcdef0123456789abcdef").expect(404);
    expect(res.body).toEqual({ detail: expect.any(String) });
  });
});
