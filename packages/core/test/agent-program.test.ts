/** The agent's bundle: python/agent.py and the parts its BUNDLE names, sent as one program. */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { agentBundle, agentProgram } from "../src/agent/program.js";
import { PYTHON_DIR, readPythonSource } from "../src/executor-scripts.js";

describe("agentBundle", () => {
  it("holds every agent_*.py part, in BUNDLE's order, then agent.py, without their cross-imports", () => {
    const bundle = agentBundle();
    const parts = readdirSync(PYTHON_DIR)
      .filter((n) => /^agent_\w+\.py$/.test(n))
      .sort();
    expect(parts.length).toBeGreaterThan(3);
    const main = readPythonSource("agent.py");
    const listed = [.../^BUNDLE = \(([^)]*)\)/m.exec(main)![1]!.matchAll(/"([\w.]+)"/g)].map((m) => m[1]);
    expect([...listed].sort()).toEqual(parts); // no part left out, none named twice
    expect(bundle).not.toMatch(/^from agent_\w+ import/m);
    // each part's first definition appears, in order, and agent.py's main comes last
    const at = (needle: string) => bundle.indexOf(needle);
    expect(at("def write_all(")).toBeGreaterThan(-1);
    expect(at("def write_all(")).toBeLessThan(at("def relay("));
    expect(at("def relay(")).toBeLessThan(at("def kernel("));
    expect(at("def zygote(")).toBeLessThan(at("class Conn:"));
    expect(at("class Conn:")).toBeLessThan(at("def main(argv):"));
  });

  it("a bundle missing its BUNDLE list is refused, and host paths replace the constants once", () => {
    expect(() => agentBundle(() => "print(1)\n")).toThrow(/BUNDLE/);
    const src = agentProgram({ workspaceDir: "/tmp/ws-x", controlDir: "/tmp/ctl-x" }).toString("utf8");
    expect(src).toMatch(/^WS = "\/tmp\/ws-x"$/m);
    expect(src).toMatch(/^CTL = "\/tmp\/ctl-x"$/m);
    expect(src.match(/^WS = /gm)).toHaveLength(1);
  });
});
