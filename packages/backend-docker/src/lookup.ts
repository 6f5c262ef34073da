/**
 * Finding and listing containers, as the session layer's PlatformResource: name, labels,
 * phase. One engine call each: `inspect` for a lookup, one label-filtered `list` for a listing.
 */
import type Dockerode from "dockerode";
import type { Component, PlatformResource, ResourcePhase } from "@code-interpreter/core/backend-kit";
import { dockerLabelFilter, LABEL_OWNER } from "@code-interpreter/core/backend-kit";
import { isNotFound } from "./errors.js";

/** Docker's container state → the layer's phase. A container being removed may still say Running. */
function phaseOf(status: string | undefined, running: boolean | undefined): ResourcePhase {
  if (status === "removing") return "removing";
  if (running || status === "running") return "running";
  if (status === "created") return "pending";
  return "stopped"; // exited, dead, paused, restarting: nothing we run stops like that
}

/** The container with exactly this name, or null (getContainer also resolves id prefixes). */
export async function findContainer(
  docker: Dockerode,
  name: string,
  signal: AbortSignal,
): Promise<PlatformResource | null> {
  let c: Dockerode.ContainerInspectInfo;
  try {
    c = await docker.getContainer(name).inspect({ abortSignal: signal });
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  if (c.Name.replace(/^\//, "") !== name) return null;
  return {
    name,
    handle: c.Id,
    tags: c.Config?.Labels ?? {},
    phase: c.State?.Dead ? "stopped" : phaseOf(c.State?.Status, c.State?.Running),
    createdAt: Date.parse(c.Created) || 0,
  };
}

/** Containers (any state) carrying both identity labels of `component` (or matching `filters`). */
export async function listContainers(
  docker: Dockerode,
  component: Component,
  owner: string | undefined,
  signal: AbortSignal,
  filters?: Record<string, string[]>,
): Promise<PlatformResource[]> {
  const extra: Record<string, string> = owner === undefined ? {} : { [LABEL_OWNER]: owner };
  const list = await docker.listContainers({
    all: true,
    filters: filters ?? dockerLabelFilter(component, extra),
    abortSignal: signal,
  });
  return list.flatMap((c) => {
    const name = c.Names?.[0]?.replace(/^\//, "");
    if (!name) return [];
    return [
      {
        name,
        handle: c.Id,
        tags: c.Labels ?? {},
        phase: phaseOf(c.State, c.State === "running"),
        createdAt: c.Created * 1000,
      },
    ];
  });
}
