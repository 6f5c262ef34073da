/**
 * How a failed session call is reported: a session out of processes is SessionExhaustedError
 * (409), a lost agent is a BackendError saying what happened (or not found, when the session
 * went with it), anything else is the platform's mapping. Used by SessionBackend.
 */
import { AgentChannelError } from "../agent/channel.js";
import {
  BackendError,
  SessionExhaustedError,
  SessionNotFoundError,
  isCodeInterpreterError,
  type CodeInterpreterError,
} from "../errors.js";
import { exhaustionError } from "./exhaustion.js";
import type { PlatformResource, SessionPlatform } from "./platform.js";

/** Asks the platform (when it can tell) whether the session's process limit is used up. */
export async function probeExhausted(
  platform: SessionPlatform,
  r: PlatformResource,
  id: string,
): Promise<SessionExhaustedError | null> {
  if (!platform.processSlotsExhausted) return null;
  const full = await platform.processSlotsExhausted(r).catch(() => false);
  return full ? new SessionExhaustedError(id) : null;
}

export async function callFailure(
  platform: SessionPlatform,
  err: unknown,
  r: PlatformResource,
  id: string,
  what: string,
): Promise<CodeInterpreterError> {
  const exhausted = exhaustionError(id, err);
  if (exhausted) return exhausted;
  if (isCodeInterpreterError(err) && err.status < 500) return err;
  const probed = await probeExhausted(platform, r, id);
  if (probed) return probed;
  if (err instanceof AgentChannelError) {
    // Gone with its container? Then the session is gone.
    const still = await platform.find(id).catch(() => r);
    if (!still || still.phase !== "running") return new SessionNotFoundError(id);
    return new BackendError(
      `${what}: the session's agent was lost (${err.message}). The code may have killed it or used up ` +
        `the session's memory or processes; its Python state is gone. The next call starts a fresh ` +
        `agent and its result says so (state_reset).`,
      { cause: err },
    );
  }
  if (isCodeInterpreterError(err)) return err;
  return platform.mapError(err, what, id);
}
