import { describe, expect, it } from "vitest";
import {
  ValidationError,
  deadline,
  expiryReason,
  fromUnixSeconds,
  isExpired,
  keepaliveExpiry,
  newLifetime,
  resolveTtlSeconds,
  secondsFloor,
  toUnixSeconds,
  type Lifetime,
} from "./core.js";

const T0 = 1_700_000_000_000; // a whole second
const MAX = 3600;

describe("resolveTtlSeconds", () => {
  it("defaults to the maximum lifetime", () => {
    expect(resolveTtlSeconds(undefined, MAX)).toBe(MAX);
    expect(resolveTtlSeconds(null, MAX)).toBe(MAX);
  });

  it("accepts 1..max", () => {
    expect(resolveTtlSeconds(1, MAX)).toBe(1);
    expect(resolveTtlSeconds(MAX, MAX)).toBe(MAX);
  });

  it("rejects a ttl above the cap, naming both numbers", () => {
    expect(() => resolveTtlSeconds(MAX + 1, MAX)).toThrow(ValidationError);
    expect(() => resolveTtlSeconds(MAX + 1, MAX)).toThrow(/3601.*3600/);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("rejects %s", (v) => {
    expect(() => resolveTtlSeconds(v, MAX)).toThrow(ValidationError);
  });
});

describe("newLifetime", () => {
  it("floors to whole seconds so label round trips are exact", () => {
    const l = newLifetime(T0 + 999, 60, MAX, 30);
    expect(l).toEqual({
      createdAt: T0,
      expiresAt: T0 + 60_000,
      maxExpiresAt: T0 + MAX * 1000,
      lastActiveAt: T0,
      idleTimeoutSeconds: 30,
    });
  });
});

describe("keepaliveExpiry", () => {
  const l = newLifetime(T0, 600, MAX, null);

  it("moves expiry to now + ttl", () => {
    expect(keepaliveExpiry(l, 600, T0 + 100_000)).toBe(T0 + 700_000);
  });

  it("never moves it earlier", () => {
    expect(keepaliveExpiry(l, 10, T0 + 1000)).toBe(l.expiresAt);
  });

  it("never moves it past the hard cap", () => {
    expect(keepaliveExpiry(l, MAX, T0 + 3_000_000)).toBe(l.maxExpiresAt);
    expect(keepaliveExpiry(l, 10 * MAX, T0 + 10_000)).toBe(l.maxExpiresAt);
  });

  it("floors now to whole seconds", () => {
    expect(keepaliveExpiry(l, 600, T0 + 100_999)).toBe(T0 + 700_000);
  });

  it.each([0, -5, 2.5, Number.NaN])("rejects ttl %s", (ttl) => {
    expect(() => keepaliveExpiry(l, ttl, T0)).toThrow(ValidationError);
  });

  it("is monotonic over many keepalives and stays within [expiresAt, maxExpiresAt]", () => {
    let cur: Lifetime = { ...l };
    for (let now = T0; now < T0 + 2 * MAX * 1000; now += 97_000) {
      const next = keepaliveExpiry(cur, 300, now);
      expect(next).toBeGreaterThanOrEqual(cur.expiresAt);
      expect(next).toBeLessThanOrEqual(cur.maxExpiresAt);
      cur = { ...cur, expiresAt: next };
    }
    expect(cur.expiresAt).toBe(cur.maxExpiresAt);
  });
});

describe("deadline / isExpired / expiryReason", () => {
  it("without idle timeout: the expiry", () => {
    const l = newLifetime(T0, 60, MAX, null);
    expect(deadline(l)).toBe(T0 + 60_000);
    expect(isExpired(l, T0 + 59_999)).toBe(false);
    expect(expiryReason(l, T0 + 59_999)).toBeNull();
    expect(isExpired(l, T0 + 60_000)).toBe(true);
    expect(expiryReason(l, T0 + 60_000)).toBe("expired");
  });

  it("ttl equal to the max lifetime: reported as max-lifetime", () => {
    const l = newLifetime(T0, MAX, MAX, null);
    expect(deadline(l)).toBe(T0 + MAX * 1000);
    expect(expiryReason(l, T0 + MAX * 1000)).toBe("max-lifetime");
  });

  it("a (corrupt) expiry past the cap is still capped", () => {
    const l: Lifetime = { ...newLifetime(T0, 60, 120, null), expiresAt: T0 + 999_000 };
    expect(deadline(l)).toBe(T0 + 120_000);
    expect(isExpired(l, T0 + 120_000)).toBe(true);
    expect(expiryReason(l, T0 + 120_000)).toBe("max-lifetime");
  });

  it("idle timeout ends the session early, measured from last activity", () => {
    const l: Lifetime = { ...newLifetime(T0, 600, MAX, 30), lastActiveAt: T0 + 100_000 };
    expect(deadline(l)).toBe(T0 + 130_000);
    expect(isExpired(l, T0 + 129_999)).toBe(false);
    expect(expiryReason(l, T0 + 129_999)).toBeNull();
    expect(isExpired(l, T0 + 130_000)).toBe(true);
    expect(expiryReason(l, T0 + 130_000)).toBe("idle");
  });

  it("an idle deadline after the expiry does not extend it", () => {
    const l = newLifetime(T0, 60, MAX, 3000);
    expect(deadline(l)).toBe(T0 + 60_000);
    expect(expiryReason(l, T0 + 60_000)).toBe("expired");
  });

  it("idle timeout 0 or null means no idle timeout", () => {
    const l: Lifetime = { ...newLifetime(T0, 60, MAX, null), idleTimeoutSeconds: 0 };
    expect(deadline(l)).toBe(T0 + 60_000);
  });

  it("isExpired and expiryReason agree", () => {
    const l: Lifetime = { ...newLifetime(T0, 600, 900, 45), lastActiveAt: T0 + 500_000 };
    for (let now = T0; now < T0 + 1_000_000; now += 7_000) {
      expect(expiryReason(l, now) !== null).toBe(isExpired(l, now));
    }
  });
});

describe("unix seconds helpers", () => {
  it("round-trip whole seconds", () => {
    expect(toUnixSeconds(T0 + 999)).toBe("1700000000");
    expect(fromUnixSeconds("1700000000")).toBe(T0);
    expect(secondsFloor(T0 + 999)).toBe(T0);
  });

  it.each([undefined, "", "-1", "1.5", "abc", "1e9", "1234567890123"])("fromUnixSeconds(%j) → null", (v) => {
    expect(fromUnixSeconds(v)).toBeNull();
  });
});
