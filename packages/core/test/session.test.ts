import { describe, expect, it } from "vitest";
import {
  APP_NAME,
  LABEL_APP,
  LABEL_COMPONENT,
  LABEL_CREATED_AT,
  LABEL_EXPIRES_AT,
  LABEL_IDLE_TIMEOUT,
  LABEL_MAX_EXPIRES_AT,
  LABEL_METADATA,
  LABEL_OWNER,
  inScope,
  isDns1123Label,
  lifetimeOf,
  newLifetime,
  newSessionId,
  ownerTag,
  parseSessionState,
  sessionFromTags,
  sessionTags,
  type LabelMap,
} from "./core.js";

const T0 = 1_700_000_000_000;
const id = newSessionId();

function tagsFor(
  idle: number | null = 60,
  owner: string | null = "abc123",
  metadata: Record<string, string> = { team: "ml", run: "7" },
) {
  const lifetime = newLifetime(T0 + 123, 600, 3600, idle);
  const tags = sessionTags(lifetime, { owner, metadata });
  return { lifetime, tags, all: { ...tags.labels, ...tags.annotations } as LabelMap };
}

describe("sessionTags / sessionFromTags", () => {
  it("round-trip a session exactly", () => {
    const { lifetime, all } = tagsFor();
    const s = sessionFromTags(id, all, null, "running");
    expect(s).not.toBeNull();
    expect(s).toEqual({
      id,
      status: "running",
      ...lifetime,
      metadata: { team: "ml", run: "7" },
      owner: "abc123",
    });
    expect(lifetimeOf(s!)).toEqual(lifetime);
  });

  it("labels carry identity, times in unix seconds, owner and idle timeout; metadata is an annotation", () => {
    const { tags } = tagsFor();
    expect(tags.labels).toEqual({
      [LABEL_APP]: APP_NAME,
      [LABEL_COMPONENT]: "session",
      [LABEL_CREATED_AT]: "1700000000",
      [LABEL_EXPIRES_AT]: "1700000600",
      [LABEL_MAX_EXPIRES_AT]: "1700003600",
      [LABEL_IDLE_TIMEOUT]: "60",
      [LABEL_OWNER]: "abc123",
    });
    expect(JSON.parse(tags.annotations[LABEL_METADATA]!)).toEqual({ team: "ml", run: "7" });
  });

  it("no owner and no idle timeout → those labels are absent and read back as null", () => {
    const { tags, all } = tagsFor(null, null, {});
    expect(tags.labels).not.toHaveProperty(LABEL_OWNER);
    expect(tags.labels).not.toHaveProperty(LABEL_IDLE_TIMEOUT);
    const s = sessionFromTags(id, all, null, "pending")!;
    expect(s.owner).toBeNull();
    expect(s.idleTimeoutSeconds).toBeNull();
    expect(s.metadata).toEqual({});
  });

  it.each([LABEL_APP, LABEL_COMPONENT])("missing identity label %s → null", (label) => {
    const { all } = tagsFor();
    const { [label]: _dropped, ...rest } = all;
    expect(sessionFromTags(id, rest, null, "running")).toBeNull();
  });

  it("a wrong identity value → null", () => {
    const { all } = tagsFor();
    expect(sessionFromTags(id, { ...all, [LABEL_COMPONENT]: "executor" }, null, "running")).toBeNull();
    expect(sessionFromTags(id, { ...all, [LABEL_APP]: "something-else" }, null, "running")).toBeNull();
  });

  it.each(["my-container", "code-exec-1b4e28ba-2fa1-41d2-883f-0016d3cca427", "", `${id}x`])(
    "non-session name %j → null",
    (name) => {
      expect(sessionFromTags(name, tagsFor().all, null, "running")).toBeNull();
    },
  );

  it.each([LABEL_CREATED_AT, LABEL_EXPIRES_AT, LABEL_MAX_EXPIRES_AT])(
    "unreadable or missing %s → null",
    (label) => {
      const { all } = tagsFor();
      expect(sessionFromTags(id, { ...all, [label]: "soon" }, null, "running")).toBeNull();
      const { [label]: _dropped, ...rest } = all;
      expect(sessionFromTags(id, rest, null, "running")).toBeNull();
    },
  );

  it("state extends the expiry, capped at the max", () => {
    const { lifetime, all } = tagsFor();
    const later = sessionFromTags(id, all, { expiresAt: lifetime.expiresAt + 60_000 }, "running")!;
    expect(later.expiresAt).toBe(lifetime.expiresAt + 60_000);
    const beyond = sessionFromTags(id, all, { expiresAt: lifetime.maxExpiresAt + 1_000_000 }, "running")!;
    expect(beyond.expiresAt).toBe(lifetime.maxExpiresAt);
  });

  it("state never moves the expiry earlier, nor last activity before creation", () => {
    const { lifetime, all } = tagsFor();
    const s = sessionFromTags(id, all, { expiresAt: T0 - 5, lastActiveAt: T0 - 5 }, "running")!;
    expect(s.expiresAt).toBe(lifetime.expiresAt);
    expect(s.lastActiveAt).toBe(lifetime.createdAt);
    const active = sessionFromTags(id, all, { lastActiveAt: T0 + 50_000 }, "running")!;
    expect(active.lastActiveAt).toBe(T0 + 50_000);
  });

  it("bad metadata or idle values degrade to defaults instead of hiding the session", () => {
    const { all } = tagsFor();
    for (const meta of ["not json", "[1,2]", "null", '"str"']) {
      expect(sessionFromTags(id, { ...all, [LABEL_METADATA]: meta }, null, "running")!.metadata).toEqual({});
    }
    const mixed = sessionFromTags(
      id,
      { ...all, [LABEL_METADATA]: '{"a":"x","b":1,"c":null}' },
      null,
      "running",
    )!;
    expect(mixed.metadata).toEqual({ a: "x" });
    for (const idle of ["abc", "-5", "1.5", "0"]) {
      expect(
        sessionFromTags(id, { ...all, [LABEL_IDLE_TIMEOUT]: idle }, null, "running")!.idleTimeoutSeconds,
      ).toBe(null);
    }
  });
});

describe("parseSessionState", () => {
  it.each<[string | null | undefined, object]>([
    [undefined, {}],
    [null, {}],
    ["", {}],
    ["garbage", {}],
    ["[]", {}],
    ['{"expiresAt": 5, "lastActiveAt": 6}', { expiresAt: 5, lastActiveAt: 6 }],
    ['{"expiresAt": "5", "lastActiveAt": null, "x": 1}', {}],
    ['{"expiresAt": 1e400}', {}],
  ])("%j → %j", (text, state) => {
    expect(parseSessionState(text)).toEqual(state);
  });
});

describe("inScope", () => {
  it("undefined owner sees everything; otherwise owners must match exactly", () => {
    expect(inScope({ owner: "a" }, undefined)).toBe(true);
    expect(inScope({ owner: "a" }, {})).toBe(true);
    expect(inScope({ owner: "a" }, { owner: "a" })).toBe(true);
    expect(inScope({ owner: "a" }, { owner: "b" })).toBe(false);
    expect(inScope({ owner: "a" }, { owner: null })).toBe(false);
    expect(inScope({ owner: null }, { owner: null })).toBe(true);
    expect(inScope({ owner: null }, { owner: "a" })).toBe(false);
  });
});

describe("ownerTag", () => {
  it("is stable, distinct per key, and safe as a label value", () => {
    expect(ownerTag("secret-key")).toBe(ownerTag("secret-key"));
    expect(ownerTag("secret-key")).not.toBe(ownerTag("secret-key2"));
    for (const key of ["k", "secret-key", "ünïcødé 🔑", "x".repeat(10_000)]) {
      const tag = ownerTag(key);
      expect(tag).toMatch(/^[0-9a-f]{32}$/);
      expect(isDns1123Label(tag)).toBe(true); // ≤ 63 chars, [a-z0-9]: valid k8s and Docker label value
      expect(tag).not.toContain(key);
    }
  });

  it("is the first 128 bits of sha256(key)", () => {
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    expect(ownerTag("abc")).toBe("ba7816bf8f01cfea414140de5dae2223");
  });
});
