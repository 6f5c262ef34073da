/**
 * Generated Authorization headers against every operation with API_KEYS set: anonymous or
 * wrong keys are 401 `{"detail"}` with `WWW-Authenticate` (also on unknown routes), never
 * anything else, and only /health answers without a key.
 */
import fc from "fast-check";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { makeApp } from "./helpers.js";

const KEY = "k-3f2b8c1e9a4d4e7f";

describe("auth fuzz (API_KEYS set)", () => {
  it("every operation with a generated Authorization header: 401 JSON unless the key is right", async () => {
    const { app } = makeApp({ env: { API_KEYS: `${KEY},other-key` } });
    const doc = (await request(app).get("/openapi.json").set("Authorization", `Bearer ${KEY}`).expect(200))
      .body as {
      paths: Record<string, Record<string, unknown>>;
    };
    // Operations the document marks open (`security: []`: /health, /livez, /readyz) need no key.
    const ops = Object.entries(doc.paths).flatMap(([template, o]) =>
      Object.entries(o as Record<string, { security?: unknown[] }>).map(([m, op]) => ({
        method: m,
        template,
        open: Array.isArray(op.security) && op.security.length === 0,
      })),
    );
    ops.push({ method: "get", template: "/no/such/route", open: false });
    expect(ops.filter((o) => o.open).map((o) => o.template)).toEqual(["/health", "/livez", "/readyz"]);
    const header = fc.oneof(
      fc.constant<string | undefined>(undefined),
      fc.constantFrom(
        "",
        "Bearer",
        "Bearer ",
        `Basic ${Buffer.from(`u:${KEY}`).toString("base64")}`,
        `Bearer ${KEY}x`,
        `Bearer ${KEY.slice(0, -1)}`,
        `Bearer  ${KEY} extra`,
        `Token ${KEY}`,
        `${KEY}`,
        `Bearer ${"a".repeat(4000)}`,
        "Bearer \t",
      ),
      fc.string({ maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      fc
        .string({ maxLength: 60 })
        .filter((s) => /^[\x21-\x7e]*$/.test(s))
        .map((s) => `Bearer ${s}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ops), header, async (op, auth) => {
        const path = op.template
          .replace("{id}", "code-session-3f2b8c1e-9a4d-4e7f-8b2a-1c2d3e4f5a6b")
          .replace("{file_id}", "f")
          .replace("{path}", "a.txt");
        let r = (request(app) as unknown as Record<string, (p: string) => request.Test>)[op.method]!(path);
        if (auth !== undefined) r = r.set("Authorization", auth);
        const res = await r;
        const what = `${op.method} ${path} [${String(auth).slice(0, 40)}] → ${res.status} ${res.text.slice(0, 100)}`;
        if (op.open) {
          expect(res.status, what).toBe(200);
          return;
        }
        expect(res.status, what).toBe(401);
        expect(res.headers["www-authenticate"], what).toBe('Bearer realm="code-interpreter"');
        expect(res.body, what).toEqual({ detail: expect.any(String) });
      }),
      { numRuns: 300 },
    );
  });
});
