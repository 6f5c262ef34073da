import { describe, expect, it } from "vitest";
import { isDns1123Label, isDockerName, isSessionId, newSessionId, SESSION_NAME_PREFIX } from "./core.js";

describe("session ids", () => {
  it("are code-session-<uuid v4>, valid Docker names and DNS-1123 labels", () => {
    for (let i = 0; i < 50; i++) {
      const id = newSessionId();
      expect(id.startsWith(SESSION_NAME_PREFIX)).toBe(true);
      expect(isSessionId(id)).toBe(true);
      expect(isDns1123Label(id)).toBe(true);
      expect(isDockerName(id)).toBe(true);
    }
  });

  it.each([
    "",
    "code-session-",
    "code-session-not-a-uuid",
    "code-session-1b4e28ba-2fa1-11d2-883f-0016d3cca427", // v1, not v4
    "code-session-1B4E28BA-2FA1-41D2-883F-0016D3CCA427", // upper case
    "my-container",
    "code-exec-1b4e28ba-2fa1-41d2-883f-0016d3cca427",
    "code-session-1b4e28ba-2fa1-41d2-883f-0016d3cca427 ",
    "../code-session-1b4e28ba-2fa1-41d2-883f-0016d3cca427",
  ])("rejects %j", (bad) => {
    expect(isSessionId(bad)).toBe(false);
  });
});
