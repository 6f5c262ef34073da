#!/usr/bin/env node
/**
 * No source file over MAX_LINES lines (issue 12): a file that long does several jobs, and a
 * newcomer should find each job by a file's name. Checked by `npm test` (scripts/test.sh).
 *
 * What counts: .ts, .py and .mjs files under packages/<pkg>/src, packages/<pkg>/python,
 * apps/<app>/src and clients/<client>, except tests (a test/ or tests/ folder, *.test.ts,
 * *.spec.ts, test_*.py, *_test.py, conftest.py) and what is listed below.
 *
 *   node scripts/check-source-size.mjs          # prints every file that breaks the rule; exit 1 if any
 *   node scripts/check-source-size.mjs --list   # also prints the 15 longest files that count
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const MAX_LINES = 350;

/**
 * Generated files: written by a tool from another source of truth, never edited by hand, so
 * their length says nothing about design. Each entry names its generator. Nothing else
 * belongs here.
 */
export const GENERATED = new Map([
  [
    "packages/client/src/generated/openapi.ts",
    "openapi-typescript output from the API's OpenAPI document (`pnpm --filter @code-interpreter/client generate`)",
  ],
]);

const EXTENSIONS = /\.(ts|py|mjs)$/;
const TEST_FILE = /(\.test\.ts|\.spec\.ts|_test\.py)$|^test_.*\.py$|^conftest\.py$/;
const SKIP_DIRS = new Set(["node_modules", "dist", "build", "__pycache__", ".venv", "test", "tests"]);

/** The folders whose files count, relative to the repository root. */
function roots(repo) {
  const sub = (dir) => {
    try {
      return readdirSync(join(repo, dir), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(dir, d.name));
    } catch {
      return [];
    }
  };
  return [
    ...sub("packages").flatMap((p) => [join(p, "src"), join(p, "python")]),
    ...sub("apps").map((a) => join(a, "src")),
    ...sub("clients"),
  ];
}

function walk(repo, dir, out) {
  let entries;
  try {
    entries = readdirSync(join(repo, dir), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name) && !e.name.startsWith(".")) walk(repo, path, out);
    } else if (e.isFile() && EXTENSIONS.test(e.name) && !TEST_FILE.test(e.name)) {
      out.push(path.split(sep).join("/"));
    }
  }
}

function countLines(file) {
  const text = readFileSync(file, "utf8");
  if (text.length === 0) return 0;
  const newlines = text.split("\n").length - 1;
  return text.endsWith("\n") ? newlines : newlines + 1;
}

/** Every counted file with its length, and the problems: each a line that says what to do. */
export function checkSourceSize(repo) {
  const files = [];
  for (const root of roots(repo)) walk(repo, root, files);
  const sized = files.map((path) => ({ path, lines: countLines(join(repo, path)) }));
  const problems = [];
  for (const { path, lines } of sized) {
    if (lines <= MAX_LINES || GENERATED.has(path)) continue;
    problems.push(
      `${path}: ${lines} lines (at most ${MAX_LINES}): split it by job into files named for each`,
    );
  }
  return { files: sized.sort((a, b) => b.lines - a.lines), problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const repo = relative(process.cwd(), join(fileURLToPath(import.meta.url), "..", "..")) || ".";
  const { files, problems } = checkSourceSize(repo);
  if (process.argv.includes("--list")) {
    for (const f of files.slice(0, 15)) console.log(`${String(f.lines).padStart(6)}  ${f.path}`);
  }
  for (const p of problems) console.error(`[source-size] ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log(
    `[source-size] ${files.length} source files, none over ${MAX_LINES} lines (generated files aside)`,
  );
}
