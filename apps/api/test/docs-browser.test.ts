/**
 * /docs renders in a real browser: headless Chromium (Debian's `chromium`, installed by
 * scripts/setup.sh) driven by playwright-core loads the page from the API — with every other
 * host blocked, so a CDN asset would fail — and the DOM lists the operations of the document.
 */
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeApp } from "./helpers.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

describe("/docs in headless Chromium", { timeout: 90_000 }, () => {
  let server: Server;
  let baseUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: run \`pnpm run setup\` (installs Debian's chromium)`);
    }
    const { app } = makeApp();
    server = createServer(app);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  it("renders every operation of the OpenAPI document, with assets only from the API", async () => {
    const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const expected = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );

    const page = await browser.newPage();
    const foreign: string[] = [];
    const failed: string[] = [];
    await page.route("**/*", async (route) => {
      const url = route.request().url();
      if (url.startsWith(baseUrl)) return route.continue();
      foreign.push(url);
      return route.abort();
    });
    page.on("requestfailed", (r) => failed.push(r.url()));
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));

    const res = await page.goto(`${baseUrl}/docs`, { waitUntil: "load" });
    expect(res?.status()).toBe(200);
    await page.waitForSelector(".opblock", { timeout: 30_000 });

    const rendered = await page.$$eval(".opblock", (blocks) =>
      blocks.map((b) => {
        const method = b.querySelector(".opblock-summary-method")?.textContent?.trim() ?? "";
        const path = b.querySelector(".opblock-summary-path")?.getAttribute("data-path") ?? "";
        return `${method.toUpperCase()} ${path}`;
      }),
    );
    expect([...rendered].sort()).toEqual([...expected].sort());
    expect(await page.textContent(".info .title")).toContain("code-interpreter");
    expect(foreign).toEqual([]);
    expect(failed).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
