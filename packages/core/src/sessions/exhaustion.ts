/**
 * Recognises a session that cannot start another process (its pids limit used up, e.g. by a
 * fork bomb the code left running): the platform's exec fails (Docker: exit 126, OCI
 * "resource temporarily unavailable"), or our runner inside cannot fork the program. Such a
 * call answers SessionExhaustedError (409) instead of a 500 or a garbled result.
 */
import type { ExecResult } from "../backend.js";
import { SessionExhaustedError, isCodeInterpreterError } from "../errors.js";

/** What the runtime or our runner prints when fork/clone fails with EAGAIN. */
const NO_PROCESS =
  /resource temporarily unavailable|cannot fork|can't fork|fork: retry|EAGAIN|cannot allocate memory.*(fork|clone)|pids limit/i;
/**
 * Not the user's program speaking: the container runtime refusing an exec, or our runner
 * failing before it could start the program (its traceback names "<runner>").
 */
const NOT_THE_PROGRAM =
  /OCI runtime exec failed|unable to start container process|exec failed:|File "<runner>"/i;

/** A SessionExhaustedError when `outcome` (an error or an exec result) shows the session has no process slot. */
export function exhaustionError(sessionId: string, outcome: unknown): SessionExhaustedError | null {
  if (outcome instanceof SessionExhaustedError) return outcome;
  if (isResult(outcome)) {
    // The program never ran: no exit status of its own, and the runtime or runner says why.
    if (outcome.exitCode !== null && outcome.exitCode !== 126) return null;
    if (outcome.timedOut) return null;
    const text = `${outcome.stdout.slice(0, 2000)}\n${outcome.stderr.slice(-2000)}`;
    return NOT_THE_PROGRAM.test(text) && NO_PROCESS.test(text) ? new SessionExhaustedError(sessionId) : null;
  }
  if (isCodeInterpreterError(outcome) && outcome.status < 500) return null;
  const message = outcome instanceof Error ? messages(outcome) : String(outcome);
  if (NO_PROCESS.test(message) || /\bexit 126\b/.test(message)) {
    return new SessionExhaustedError(sessionId, { cause: outcome });
  }
  return null;
}

function isResult(v: unknown): v is ExecResult {
  return !!v && typeof v === "object" && "stdout" in v && "exitCode" in v && "timedOut" in v;
}

function messages(err: Error): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 4 && e instanceof Error; i++) {
    parts.push(e.message);
    e = e.cause;
  }
  return parts.join("\n");
}
