/**
 * The client's calls are the OpenAPI document's operations: the route table and every call's
 * parameters, body and answer are typed from the generated types, so a call the document does
 * not allow does not compile (the `@ts-expect-error` lines below fail `typecheck` when they
 * stop being errors). At run time, path parameters are encoded into the document's templates.
 */
import { describe, expect, it } from "vitest";
import { CodeInterpreter, NotFoundError, ValidationError } from "../src/index.js";
import { HttpClient } from "../src/http.js";
import { Api, ROUTES, routePath, type ResponseJson } from "../src/wire.js";

type IsExactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

describe("typed operations", () => {
  it("reject what the document does not allow (checked by the compiler)", () => {
    const api = new Api(new HttpClient({ baseUrl: "http://127.0.0.1:9", maxRetries: 0 }));
    const never = () => {
      // @ts-expect-error getSession needs its `id` path parameter
      void api.json("getSession", {});
      // @ts-expect-error ttl_seconds is a number in the document
      void api.json("createSession", { json: { ttl_seconds: "60" } });
      // @ts-expect-error listFiles has no path parameters
      void api.json("listFiles", { params: { id: "x" } });
      // @ts-expect-error the execute body needs `code`
      void api.json("execute", { json: { cmd: "ls" } });
      // @ts-expect-error not an operation of the document
      void api.json("executeBash", {});
    };
    expect(typeof never).toBe("function");
    const sessionAnswer: IsExactly<ResponseJson<"getSession">["expires_at"], number> = true;
    const listAnswer: IsExactly<ResponseJson<"listSessions">["next_cursor"], string | undefined> = true;
    expect([sessionAnswer, listAnswer]).toEqual([true, true]);
  });

  it("ROUTES use the document's path templates", () => {
    expect(ROUTES.writeSessionFile).toEqual(["PUT", "/v1/sessions/{id}/files/{path}"]);
    expect(ROUTES.copyFileToSession).toEqual(["POST", "/v1/sessions/{id}/files"]);
  });
});

describe("path parameters", () => {
  it("are percent-encoded into the template; a workspace path keeps its slashes", () => {
    expect(routePath("/v1/files/{file_id}", { file_id: "a b/c?d" })).toBe("/v1/files/a%20b%2Fc%3Fd");
    expect(routePath("/v1/sessions/{id}/files/{path}", { id: "s", path: "dir/ü #.txt" })).toBe(
      "/v1/sessions/s/files/dir/%C3%BC%20%23.txt",
    );
  });

  it("refuse workspace paths with empty, '.' or '..' segments (422), ids of only dots (404)", async () => {
    for (const path of ["/etc/passwd", "a/../b", "./a", "a//b", ""]) {
      expect(() => routePath("/v1/sessions/{id}/files/{path}", { id: "s", path }), path).toThrow(
        ValidationError,
      );
    }
    expect(() => routePath("/v1/sessions/{id}", { id: ".." })).toThrow(NotFoundError);
    expect(() => routePath("/v1/files/{file_id}", { file_id: "." })).toThrow(NotFoundError);
    // Before any request: a client pointed at nothing still answers with the typed error.
    const client = new CodeInterpreter({ baseUrl: "http://127.0.0.1:9", maxRetries: 0 });
    await expect(client.files.download("..")).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.sessions.get("..")).rejects.toBeInstanceOf(NotFoundError);
  });
});
