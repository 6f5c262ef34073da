/**
 * The OpenAPI document: valid OpenAPI 3.1 (a maintained validator), one operation for every
 * route the app mounts and no other, served at /openapi.json, with /docs and its assets.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import type { Express } from "express";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../src/index.js";
import { ContractChecker } from "./e2e/contract.js";
import { makeApp } from "./helpers.js";

interface LayerLike {
  rawPath?: unknown;
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[] };
}

/** Every route the Express app mounts, as "METHOD /openapi/{style}" (routers walked recursively). */
function mountedRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: LayerLike[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const path = (prefix + layer.route.path).replace(/:(\w+)/g, "{$1}").replace(/\*(\w+)/g, "{$1}");
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== "_all") out.push(`${method.toUpperCase()} ${path.replace(/\/$/, "") || "/"}`);
        }
      } else if (layer.handle?.stack) {
        const raw = layer.rawPath;
        if (typeof raw !== "string") throw new Error("a mounted router without a string path");
        walk(layer.handle.stack, raw === "/" ? prefix : prefix + raw);
      }
    }
  };
  walk((app as unknown as { router: { stack: LayerLike[] } }).router.stack, "");
  return out.sort();
}

function documentRoutes(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

describe("OpenAPI document", () => {
  it("is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)", async () => {
    const { app } = makeApp();
    const res = await request(app).get("/openapi.json").expect(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.body.openapi).toBe("3.1.0");
    const validator = new Validator();
    const result = await validator.validate(res.body as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("lists exactly the routes the app mounts", async () => {
    const { app } = makeApp();
    const doc = (await request(app).get("/openapi.json").expect(200)).body;
    // /mcp speaks JSON-RPC (the Model Context Protocol), not this REST contract: documented in
    // docs/api.md, and every other mounted route must be in the document.
    const mounted = mountedRoutes(app).filter((r) => !r.endsWith(" /mcp"));
    expect(mountedRoutes(app)).toEqual(expect.arrayContaining(["POST /mcp", "DELETE /mcp"]));
    expect(mounted.length).toBeGreaterThan(20);
    expect(documentRoutes(doc)).toEqual(mounted);
  });

  it("carries every error status of the contract with the {detail} shape, and the config's limits", async () => {
    const { app } = makeApp({ env: { MAX_EXEC_TIMEOUT_MS: "12345" } });
    const doc = (await request(app).get("/openapi.json").expect(200)).body;
    expect(doc.components.schemas.Error).toEqual({
      type: "object",
      description: expect.any(String),
      properties: { detail: expect.objectContaining({ type: "string" }) },
      required: ["detail"],
      additionalProperties: false,
    });
    const statuses = new Set<string>();
    for (const ops of Object.values(doc.paths) as Array<
      Record<string, { responses: Record<string, unknown> }>
    >) {
      for (const op of Object.values(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          statuses.add(status);
          if (Number(status) >= 400 && status !== "503") {
            expect(response).toMatchObject({
              content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
            });
          }
        }
      }
    }
    for (const s of ["400", "401", "404", "411", "413", "415", "422", "429", "500", "501", "503"]) {
      expect(statuses).toContain(s);
    }
    expect(doc.components.schemas.ExecuteRequest.properties.timeout_ms.anyOf[0].maximum).toBe(12345);
    expect(doc.components.schemas.Session.properties.expires_at).toMatchObject({ type: "number" });
    expect(doc.paths["/health"].get.security).toEqual([]);
  });

  it("needs a key like every route but /health when API_KEYS is set", async () => {
    const { app } = makeApp({ env: { API_KEYS: "k" } });
    await request(app).get("/openapi.json").expect(401);
    await request(app).get("/docs").expect(401);
    await request(app).get("/openapi.json").set("Authorization", "Bearer k").expect(200);
  });
});

describe("/docs", () => {
  it("serves the page and its assets from the API (no CDN)", async () => {
    const { app } = makeApp();
    const page = await request(app).get("/docs").expect(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["content-security-policy"]).toMatch(/script-src 'self'/);
    const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(srcs.length).toBeGreaterThanOrEqual(3);
    for (const src of srcs) {
      expect(src).toMatch(/^\/docs\/assets\//);
      const asset = await request(app).get(src).expect(200);
      expect(Number(asset.headers["content-length"] ?? asset.text?.length ?? 1)).toBeGreaterThan(0);
    }
    const init = await request(app).get("/docs/assets/init.js").expect(200);
    expect(init.text).toContain('url: "/openapi.json"');
    await request(app).get("/docs/assets/nope.js").expect(404);
    await request(app).get("/docs/assets/..%2Fpackage.json").expect(404);
  });
});

describe("openApiDocument (exported)", () => {
  it("is the document the server serves, without a server", async () => {
    const { app, config } = makeApp();
    const served = (await request(app).get("/openapi.json").expect(200)).body;
    expect(JSON.parse(JSON.stringify(openApiDocument(config)))).toEqual(served);
  });
});

describe("503 answers of the health routes", () => {
  it("/health and /readyz answer 503 with their own shape, as the document says", async () => {
    const { app, backend, config } = makeApp();
    backend.ping = async () => {
      throw new Error("connect ENOENT /run/nothing.sock");
    };
    const checker = new ContractChecker(
      JSON.parse(JSON.stringify(openApiDocument(config))) as ConstructorParameters<typeof ContractChecker>[0],
    );
    for (const path of ["/health", "/readyz"]) {
      const res = await request(app).get(path).expect(503);
      expect(res.body).toMatchObject({ status: "unavailable", detail: expect.any(String) });
      expect(res.headers["retry-after"]).toBeUndefined();
      checker.check("GET", path, 503, res.headers["content-type"] ?? "", Buffer.from(res.text));
    }
    expect(checker.checked).toBe(2);
  });
});
