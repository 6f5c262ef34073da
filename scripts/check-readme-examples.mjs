#!/usr/bin/env node
/**
 * A package README's usage example is a real file that the package's tests compile and run
 * (`examples/*.ts`, `test/examples.test.ts`; the Python client's `examples/quickstart.py`,
 * `tests/test_examples.py`). The README shows that file: the code block right
 * after a link to it must be the file, byte for byte, or the README drifts from what is
 * tested. Checked by `npm test` (scripts/test.sh).
 *
 * A link is a line holding [`examples/NAME`](examples/NAME); the first ``` block after it is
 * compared with the file.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const LINK = /\[`(examples\/[\w./-]+)`\]\(\1\)/;

function readmes(repo) {
  const out = [];
  for (const group of ["packages", "apps", "clients"]) {
    let dirs = [];
    try {
      dirs = readdirSync(join(repo, group), { withFileTypes: true }).filter((d) => d.isDirectory());
    } catch {
      continue;
    }
    for (const d of dirs) {
      const readme = join(group, d.name, "README.md");
      if (existsSync(join(repo, readme))) out.push(readme);
    }
  }
  return out;
}

/** The problems found: each a line that says where and what to do. */
export function checkReadmeExamples(repo) {
  const problems = [];
  let shown = 0;
  for (const readme of readmes(repo)) {
    const lines = readFileSync(join(repo, readme), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const m = LINK.exec(lines[i]);
      if (!m) continue;
      const file = join(readme, "..", m[1]);
      const open = lines.findIndex((l, j) => j > i && l.startsWith("```"));
      const close = open === -1 ? -1 : lines.findIndex((l, j) => j > open && l.startsWith("```"));
      if (close === -1) {
        problems.push(`${readme}:${i + 1}: no code block after the link to ${m[1]}`);
        continue;
      }
      if (!existsSync(join(repo, file))) {
        problems.push(`${readme}:${i + 1}: ${m[1]} does not exist`);
        continue;
      }
      const block = lines.slice(open + 1, close).join("\n") + "\n";
      const actual = readFileSync(join(repo, file), "utf8");
      if (block !== actual) {
        problems.push(
          `${readme}:${open + 2}: the block differs from ${file}: paste the file into the README`,
        );
      }
      shown++;
      i = close;
    }
  }
  return { shown, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const repo = relative(process.cwd(), join(fileURLToPath(import.meta.url), "..", "..")) || ".";
  const { shown, problems } = checkReadmeExamples(repo);
  for (const p of problems) console.error(`[readme-examples] ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log(`[readme-examples] ${shown} README examples are their files, byte for byte`);
}
