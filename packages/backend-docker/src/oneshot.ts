/**
 * One-shot execution: a fresh hardened container, files staged, the code run, the container
 * removed whatever happens. Its keeper ends it at the reap-after time even if this process
 * dies; the reaper removes what is left ("orphaned-executor").
 */
import type Dockerode from "dockerode";
import type { ExecResult, Logger, OneShotRequest } from "@code-interpreter/core";
import {
  EXECUTOR_REAP_MARGIN_MS,
  LABEL_REAP_AFTER,
  assertUniqueSafePaths,
  baseLabels,
  executorCommands,
  newExecutorName,
  runCode,
  stageFiles,
  toUnixSeconds,
} from "@code-interpreter/core/backend-kit";
import { createOptions, type ContainerTemplate } from "./container-spec.js";
import { mapDockerError } from "./errors.js";
import { removeAndWait } from "./removal.js";
import { DockerExecTransport } from "./transport.js";

export interface OneShotContext {
  docker: Dockerode;
  template: ContainerTemplate;
  image: string;
  cpuSeconds: number;
  maxFileBytes: number;
  apiTimeoutMs: number;
  logger: Logger;
  now: () => number;
}

export async function executeOneShot(ctx: OneShotContext, req: OneShotRequest): Promise<ExecResult> {
  assertUniqueSafePaths(req.files.map((f) => f.path));
  const name = newExecutorName();
  const now = ctx.now();
  const reapAfter = now + req.timeoutMs + EXECUTOR_REAP_MARGIN_MS;
  const labels = { ...baseLabels("executor"), [LABEL_REAP_AFTER]: toUnixSeconds(reapAfter + 999) };
  const cmd = executorCommands.keeper({
    statePath: null,
    maxExpiresAt: reapAfter,
    expiresAt: reapAfter,
    idleTimeoutSeconds: null,
    createdAt: now,
  });
  try {
    const signal = AbortSignal.timeout(ctx.apiTimeoutMs);
    const container = await ctx.docker.createContainer(
      createOptions(ctx.template, name, labels, cmd, { abortSignal: signal }),
    );
    await container.start({ abortSignal: AbortSignal.timeout(ctx.apiTimeoutMs) });
    const transport = new DockerExecTransport(container, { apiTimeoutMs: ctx.apiTimeoutMs });
    await stageFiles(transport, req.files, { maxFileBytes: ctx.maxFileBytes });
    return await runCode(transport, req, {
      cpuSeconds: ctx.cpuSeconds,
      maxFileBytes: ctx.maxFileBytes,
      kill: () => removeAndWait(ctx.docker, container.id, ctx.apiTimeoutMs),
    });
  } catch (err) {
    throw mapDockerError(err, "running the code", ctx.image);
  } finally {
    await removeAndWait(ctx.docker, name, ctx.apiTimeoutMs).catch((err: unknown) =>
      ctx.logger.warn({ sessionId: name, err: String(err) }, "removing a one-shot executor failed"),
    );
  }
}
