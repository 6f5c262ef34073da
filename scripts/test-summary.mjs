// Sums every package's vitest JSON report (and pytest JUnit report, where a package has Python
// tests: packages/core's in-executor programs) into one closing line, and fails when a
// package produced no report (its suite did not run), ran no test at all, or skipped any:
// a green run that skipped the real-engine tests would be a failure in disguise.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const dirs = ["packages", "apps", "tests"].flatMap((top) =>
  readdirSync(top, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(top, d.name)),
);
let passed = 0;
let failed = 0;
let skipped = 0;
let problems = 0;
/** Counts of a pytest JUnit XML report: the <testsuite> element's attributes. */
function pytestCounts(xml) {
  const suite = /<testsuite\b([^>]*)>/.exec(xml);
  if (!suite) return null;
  const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite[1])?.[1] ?? 0);
  const tests = attr("tests");
  const failed = attr("failures") + attr("errors");
  const skipped = attr("skipped");
  return { passed: tests - failed - skipped, failed, skipped };
}

for (const dir of dirs) {
  const pyFile = join(dir, ".pytest-report.xml");
  if (existsSync(join(dir, "python", "tests"))) {
    const c = existsSync(pyFile) ? pytestCounts(readFileSync(pyFile, "utf8")) : null;
    if (!c) {
      console.error(`[test] ${dir} (python): no pytest report (its suite did not run)`);
      problems++;
    } else {
      console.log(`[test] ${dir} (python): ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
      if (c.passed === 0) problems++;
      if (c.skipped > 0) {
        console.error(`[test] ${dir} (python): ${c.skipped} test(s) skipped; nothing may be skipped here`);
        problems++;
      }
      passed += c.passed;
      failed += c.failed;
      skipped += c.skipped;
    }
  }
  const file = join(dir, ".vitest-report.json");
  if (!existsSync(file)) {
    console.error(`[test] ${dir}: no test report (its suite did not run)`);
    problems++;
    continue;
  }
  const r = JSON.parse(readFileSync(file, "utf8"));
  const p = r.numPassedTests ?? 0;
  const f = (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0);
  const s = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`[test] ${dir}: ${p} passed, ${f} failed, ${s} skipped`);
  if (p === 0) {
    console.error(`[test] ${dir}: ran no test`);
    problems++;
  }
  if (s > 0) {
    console.error(`[test] ${dir}: ${s} test(s) skipped; nothing may be skipped here`);
    problems++;
  }
  passed += p;
  failed += f;
  skipped += s;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || problems > 0 ? 1 : 0);
