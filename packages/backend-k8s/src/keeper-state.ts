/**
 * Recording a session's expiry and last activity where its keeper (the pod's PID 1) reads
 * them, so the pod ends at its TTL and idle deadline even when no API runs
 * (`buildSessionPod({ keeperEnforcesExpiry: true })`, docs/kubernetes.md).
 */
import { BackendError, type ExecTransport } from "@code-interpreter/core";
import { execCapture } from "@code-interpreter/core/backend-kit";
import { keeperStateCommand, type KeeperState } from "./pod-spec.js";

/** Writes KEEPER_STATE_PATH in the pod through `t`; BackendError when the command fails. */
export async function writeKeeperState(t: ExecTransport, state: KeeperState): Promise<void> {
  const r = await execCapture(t, keeperStateCommand(state), { maxBytes: 4096 });
  if (r.exitCode !== 0) {
    throw new BackendError(
      `recording the session's expiry in its pod failed (exit ${String(r.exitCode)}): ${r.stderr
        .toString("utf8")
        .trim()
        .slice(0, 200)}`,
    );
  }
}
