/**
 * Removing containers. A force-remove answers 404 when the container is already gone and 409
 * "already in progress" when someone else (AutoRemove, another API process) is removing it;
 * `removeAndWait` then waits with the engine's own `wait?condition=removed`.
 */
import type Dockerode from "dockerode";
import { isNotFound, isRemovalInProgress } from "./errors.js";

export type RemoveOutcome = "removed" | "gone" | "in-progress";

/** How long to wait for a removal someone else started. */
const REMOVAL_WAIT_MS = 10_000;

/** Force-removes a container with its anonymous volumes (the session state volume). */
export async function forceRemove(
  docker: Dockerode,
  ref: string,
  signal: AbortSignal,
): Promise<RemoveOutcome> {
  try {
    await docker.getContainer(ref).remove({ force: true, v: true, abortSignal: signal });
    return "removed";
  } catch (err) {
    if (isNotFound(err)) return "gone";
    if (isRemovalInProgress(err)) return "in-progress";
    throw err;
  }
}

/** Force-removes and, when another removal is under way, waits until the container is gone. */
export async function removeAndWait(docker: Dockerode, ref: string, apiTimeoutMs: number): Promise<void> {
  const outcome = await forceRemove(docker, ref, AbortSignal.timeout(apiTimeoutMs));
  if (outcome !== "in-progress") return;
  try {
    await docker
      .getContainer(ref)
      .wait({ condition: "removed", abortSignal: AbortSignal.timeout(REMOVAL_WAIT_MS) });
  } catch (err) {
    if (isNotFound(err)) return; // already gone before the wait began
    throw err;
  }
}
