/**
 * GET /openapi.json and GET /docs: the generated OpenAPI document, and Swagger UI for people.
 * The page's assets come from the `swagger-ui-dist` npm package, served by the API itself
 * under /docs/assets, so /docs works offline (no CDN). Scripts are files, not inline, so the
 * page runs under a strict Content-Security-Policy.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import express, { Router } from "express";
import type { Config } from "./config.js";
import { openApiDocument } from "./openapi.js";

const SWAGGER_UI_DIR = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>code-interpreter API</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/init.js"></script>
  </body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
});
`;

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:";

export function docsRouter(config: Config): Router {
  const router = Router();
  // Built once: the document depends only on the config and the version.
  const document = JSON.stringify(openApiDocument(config));

  router.get("/openapi.json", (_req, res) => {
    res.type("application/json").send(document);
  });

  router.get("/docs", (_req, res) => {
    res.setHeader("Content-Security-Policy", CSP);
    res.type("text/html").send(PAGE);
  });

  router.use("/docs/assets", (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    if (req.path === "/init.js") {
      res.type("text/javascript").send(INIT);
      return;
    }
    next();
  });
  router.use(
    "/docs/assets",
    express.static(SWAGGER_UI_DIR, { index: false, fallthrough: true, immutable: true, maxAge: "1d" }),
  );
  return router;
}
