/**
 * The packages as a user gets them: `pnpm pack` every published package, install the tarballs
 * into a blank project (their dependencies from the npm registry), then
 * - a Docker-only install (no backend-k8s) pulls no Kubernetes client;
 * - every tarball carries the LICENSE and the sources its source maps point at;
 * - a strict TypeScript program with `skipLibCheck: false` importing each public entry compiles
 *   (the API's createApp is typed, not `any`);
 * - `require()` of each entry works (Node >= 20.19 loads ESM without top-level await);
 * - the compiled program runs code on the real engine through a Docker backend.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, run } from "./support.js";

const PACKAGES: Record<string, string> = {
  "@code-interpreter/core": "packages/core",
  "@code-interpreter/files-client": "packages/files-client",
  "@code-interpreter/backend-docker": "packages/backend-docker",
  "@code-interpreter/backend-k8s": "packages/backend-k8s",
  "@code-interpreter/api": "apps/api",
  "@code-interpreter/client": "packages/client",
};
/** The API package's version in this checkout: what the tarball must carry and report. */
const API_PACKAGE_VERSION = (
  JSON.parse(readFileSync(join(ROOT, "apps/api/package.json"), "utf8")) as { version: string }
).version;
const DOCKER_ONLY = Object.keys(PACKAGES).filter((p) => p !== "@code-interpreter/backend-k8s");

const work = mkdtempSync(join(tmpdir(), "ci-packaging-"));
const packs = join(work, "tarballs");
const project = join(work, "project");
const tarball: Record<string, string> = {};

async function npm(...args: string[]) {
  return run("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: project,
    timeout: 600_000,
    maxBuffer: 32 * 1024 * 1024,
  });
}

beforeAll(async () => {
  for (const [name, dir] of Object.entries(PACKAGES)) {
    const { stdout } = await run("pnpm", ["pack", "--pack-destination", packs], {
      cwd: join(ROOT, dir),
      timeout: 120_000,
    });
    const file = stdout.trim().split("\n").at(-1)!.trim();
    tarball[name] = resolve(join(ROOT, dir), file);
    expect(existsSync(tarball[name]), `${name}: ${file}`).toBe(true);
  }
  // A blank project depending on the tarballs. `overrides` ("$name": the direct dependency's
  // spec) make the packages' dependencies on each other use the tarballs too.
  rmSync(project, { recursive: true, force: true });
  await run("mkdir", ["-p", project]);
  await installPackages(DOCKER_ONLY);
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Makes `names` (tarballs) the project's dependencies and installs. */
async function installPackages(names: string[]): Promise<void> {
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify(
      {
        name: "blank-user-project",
        private: true,
        type: "module",
        dependencies: Object.fromEntries(names.map((n) => [n, `file:${tarball[n]}`])),
        overrides: Object.fromEntries(names.map((n) => [n, `$${n}`])),
      },
      null,
      2,
    ),
  );
  await npm("install");
}

const nm = (...p: string[]) => join(project, "node_modules", ...p);

describe("published packages", () => {
  it("a Docker-only install pulls no Kubernetes client", () => {
    expect(existsSync(nm("@code-interpreter/api/package.json"))).toBe(true);
    expect(existsSync(nm("@code-interpreter/backend-docker/package.json"))).toBe(true);
    expect(existsSync(nm("@code-interpreter/backend-k8s"))).toBe(false);
    expect(existsSync(nm("@kubernetes/client-node"))).toBe(false);
  });

  it("each tarball has LICENSE, engines, repository, homepage, keywords", async () => {
    await installPackages(Object.keys(PACKAGES));
    const license = readFileSync(join(ROOT, "LICENSE"), "utf8");
    for (const name of Object.keys(PACKAGES)) {
      expect(readFileSync(nm(name, "LICENSE"), "utf8"), name).toBe(license);
      const pkg = JSON.parse(readFileSync(nm(name, "package.json"), "utf8")) as Record<string, unknown>;
      expect(pkg.license, name).toBe("MIT");
      expect(pkg.engines, name).toEqual({ node: ">=20.19" });
      expect(pkg.repository, name).toMatchObject({ type: "git", url: expect.stringMatching(/^git\+https:/) });
      expect(pkg.homepage, name).toMatch(/^https:/);
      expect((pkg.keywords as string[]).length, name).toBeGreaterThan(0);
      expect(JSON.stringify(pkg), name).not.toContain("workspace:");
    }
  }, 600_000);

  it("every source map points at sources that are in the tarball", () => {
    for (const name of Object.keys(PACKAGES)) {
      const dist = nm(name, "dist");
      const maps = (readdirSync(dist, { recursive: true }) as string[]).filter((f) => f.endsWith(".map"));
      expect(maps.length, name).toBeGreaterThan(0);
      for (const m of maps) {
        const map = JSON.parse(readFileSync(join(dist, m), "utf8")) as { sources: string[] };
        for (const s of map.sources) {
          expect(existsSync(resolve(dirname(join(dist, m)), s)), `${name}/dist/${m} → ${s}`).toBe(true);
        }
      }
    }
  });

  it("a strict TypeScript program with skipLibCheck: false compiles against every public entry", async () => {
    await npm("install", "--no-save", "typescript@~5.9.3", "@types/node@^20.19.0");
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: false,
          noEmitOnError: true,
          outDir: "out",
          types: ["node"],
        },
        include: ["main.ts"],
      }),
    );
    writeFileSync(
      join(project, "main.ts"),
      `import { isSessionId, type Backend } from "@code-interpreter/core";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { createFileStore } from "@code-interpreter/files-client";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { createKubernetesBackend } from "@code-interpreter/backend-k8s";
import { createApp, executorLimits, loadConfig, API_VERSION } from "@code-interpreter/api";
import { CodeInterpreter, NotFoundError, type Execution, type Health } from "@code-interpreter/client";

type IsAny<T> = 0 extends 1 & T ? true : false;
const config = loadConfig({ LOG_LEVEL: "silent" });
const files = createFileStore({ dir: process.argv[2]!, maxFileBytes: 1024, ttlSeconds: 60 });
const app = createApp({ backend: new InMemoryBackend(), files, config });
// createApp is typed (Express's types ship with the API), not any:
const typed: IsAny<typeof app> = false;
const listen: (port: number) => unknown = app.listen;
void [typed, listen, createKubernetesBackend, isSessionId("x")];
// The client's types (generated from the OpenAPI document) ship in its tarball:
const client = new CodeInterpreter({ baseUrl: "http://127.0.0.1:9", maxRetries: 0 });
const health: () => Promise<Health> = () => client.health();
const run: (code: string) => Promise<Execution> = (code) => client.execute(code);
const status: Health["status"] = "ok";
const fileIdTyped: IsAny<Execution["files"][number]["fileId"]> = false;
void [health, run, status, fileIdTyped, new NotFoundError({ status: 404, detail: "gone" })];

const backend: Backend = createDockerBackend({
  image: config.executorImage,
  limits: executorLimits(config),
  sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
  maxFileBytes: config.maxFileSizeBytes,
});
await backend.ping();
const result = await backend.execute({
  language: "python",
  code: "import os\\nprint(os.getuid())\\n6 * 7",
  timeoutMs: 20000,
  maxOutputBytes: 10000,
  files: [],
});
await backend.close();
console.log(JSON.stringify({ api: API_VERSION, stdout: result.stdout, exitCode: result.exitCode }));
`,
    );
    const tsc = await run(join(project, "node_modules/.bin/tsc"), ["-p", "tsconfig.json"], {
      cwd: project,
      timeout: 300_000,
    }).catch((e: { stdout?: string; message: string }) => ({ stdout: `FAILED\n${e.stdout ?? e.message}` }));
    expect(tsc.stdout).toBe("");
  }, 600_000);

  it("require() of each package works (no ERR_PACKAGE_PATH_NOT_EXPORTED)", async () => {
    const entries = [...Object.keys(PACKAGES), "@code-interpreter/core/testing"];
    writeFileSync(
      join(project, "require.cjs"),
      `const names = ${JSON.stringify(entries)};
for (const n of names) { const m = require(n); if (Object.keys(m).length === 0) throw new Error(n + ": empty"); }
console.log("ok " + names.length);`,
    );
    const { stdout } = await run(process.execPath, ["require.cjs"], { cwd: project, timeout: 60_000 });
    expect(stdout.trim()).toBe(`ok ${entries.length}`);
  });

  it("the compiled program runs code on the real engine through the Docker backend", async () => {
    const filesDir = mkdtempSync(join(work, "files-"));
    const { stdout } = await run(process.execPath, ["out/main.js", filesDir], {
      cwd: project,
      timeout: 120_000,
      env: process.env,
    });
    expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toEqual({
      api: API_PACKAGE_VERSION,
      stdout: "65532\n42\n",
      exitCode: 0,
    });
  }, 180_000);

  it("the API binary from the tarball answers --help and exits 0", async () => {
    const { stdout } = await run(nm(".bin/code-interpreter-api"), ["--help"], {
      cwd: project,
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^Usage: code-interpreter-api/);
  });

  it("the API from the tarball reports the package's own version (what /health serves)", async () => {
    const { stdout } = await run(nm(".bin/code-interpreter-api"), ["--version"], {
      cwd: project,
      timeout: 60_000,
    });
    expect(stdout.trim()).toBe(API_PACKAGE_VERSION);
    const installed = JSON.parse(readFileSync(nm("@code-interpreter/api/package.json"), "utf8")) as {
      version: string;
    };
    expect(installed.version).toBe(API_PACKAGE_VERSION);
  });
});
