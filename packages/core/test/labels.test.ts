import { describe, expect, it } from "vitest";
import {
  METADATA_LIMITS,
  ValidationError,
  baseLabels,
  dockerLabelFilter,
  hasComponentLabels,
  labelSelector,
  validateMetadata,
} from "./core.js";

describe("label selectors", () => {
  it("labelSelector", () => {
    expect(labelSelector("session")).toBe("app=code-interpreter,component=session");
    expect(labelSelector("executor")).toBe("app=code-interpreter,component=executor");
    expect(labelSelector("session", { "code-interpreter.dev/owner": "abc" })).toBe(
      "app=code-interpreter,component=session,code-interpreter.dev/owner=abc",
    );
  });

  it("dockerLabelFilter", () => {
    expect(dockerLabelFilter("session")).toEqual({ label: ["app=code-interpreter", "component=session"] });
    expect(dockerLabelFilter("executor", { "code-interpreter.dev/owner": "abc" })).toEqual({
      label: ["app=code-interpreter", "component=executor", "code-interpreter.dev/owner=abc"],
    });
  });

  it("hasComponentLabels needs both identity labels with the right values", () => {
    expect(hasComponentLabels(baseLabels("session"), "session")).toBe(true);
    expect(hasComponentLabels(baseLabels("session"), "executor")).toBe(false);
    expect(hasComponentLabels({ app: "code-interpreter" }, "session")).toBe(false);
    expect(hasComponentLabels({ component: "session" }, "session")).toBe(false);
    expect(hasComponentLabels(null, "session")).toBe(false);
    expect(hasComponentLabels(undefined, "session")).toBe(false);
  });
});

describe("validateMetadata", () => {
  it("absent → {}", () => {
    expect(validateMetadata(undefined)).toEqual({});
    expect(validateMetadata(null)).toEqual({});
  });

  it("returns a copy of a valid flat string map", () => {
    const input = { team: "ml", "run-id": "42", empty: "", ünï: "cødé" };
    const out = validateMetadata(input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
  });

  it("accepts the limits exactly", () => {
    const input: Record<string, string> = {};
    for (let i = 0; i < METADATA_LIMITS.maxKeys; i++) input[`k${i}`] = "v".repeat(50);
    expect(Object.keys(validateMetadata(input))).toHaveLength(METADATA_LIMITS.maxKeys);
    expect(validateMetadata({ ["k".repeat(64)]: "v".repeat(256) })).toBeTruthy();
  });

  it.each<[string, unknown, RegExp]>([
    ["an array", ["a"], /must be an object/],
    ["a string", "team=ml", /must be an object/],
    ["a number", 5, /must be an object/],
    ["a number value", { a: 1 }, /metadata\.a must be a string/],
    ["a null value", { a: null }, /metadata\.a must be a string/],
    ["a nested object", { a: { b: "c" } }, /metadata\.a must be a string/],
    ["an empty key", { "": "x" }, /keys must be 1-64/],
    ["a long key", { ["k".repeat(65)]: "x" }, /keys must be 1-64/],
    ["a long value", { a: "v".repeat(257) }, /metadata\.a is longer than 256/],
    [
      "too many keys",
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])),
      /at most 32 keys/,
    ],
    [
      "too large as JSON",
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(250)])),
      /larger than 4096 bytes/,
    ],
  ])("rejects %s", (_name, input, message) => {
    expect(() => validateMetadata(input)).toThrow(ValidationError);
    expect(() => validateMetadata(input)).toThrow(message);
  });

  it("measures the JSON size in bytes, not characters", () => {
    // 16 values of 128 three-byte characters: ~6 KiB of UTF-8 but only ~2 K characters.
    const input = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, "語".repeat(128)]));
    expect(() => validateMetadata(input)).toThrow(/larger than 4096 bytes/);
  });
});

describe("selectors keep the identity labels", () => {
  it("extra labels cannot override app/component", async () => {
    const { labelSelector, dockerLabelFilter } = await import("./core.js");
    expect(labelSelector("session", { app: "other", component: "x" })).toBe(
      "app=code-interpreter,component=session",
    );
    expect(dockerLabelFilter("executor", { component: "session" }).label).toEqual([
      "app=code-interpreter",
      "component=executor",
    ]);
  });
});
