/**
 * InMemoryBackend: a Backend for unit tests of code that sits on top of the interface (the
 * API's route layer, tools). Sessions live in a Map and use the real naming, lifetime, label
 * and scope rules; workspaces are Maps of path → bytes; "running code" is a handler the test
 * supplies. No containers, no network, no filesystem.
 */
import { Readable } from "node:stream";
import { buffer as readAll } from "node:stream/consumers";
import type {
  Backend,
  BackendCapabilities,
  CreateSessionRequest,
  ExecRequest,
  ExecResult,
  OneShotRequest,
  ProducedFile,
  ReapReport,
  Scope,
  SessionFile,
  SessionInfo,
  StagedFile,
  WorkspaceEntry,
} from "../backend.js";
import {
  BackendUnavailableError,
  NotFoundError,
  PayloadTooLargeError,
  SessionNotFoundError,
  ValidationError,
} from "../errors.js";
import { validateMetadata } from "../labels.js";
import { expiryReason, isExpired, keepaliveExpiry, newLifetime } from "../lifetime.js";
import { isSessionId, newSessionId } from "../naming.js";
import { OutputLimiter } from "../output.js";
import { assertSafeWorkspacePath, assertUniqueSafePaths } from "../paths.js";
import { inScope, lifetimeOf } from "../session.js";

/** What a run handler sees: the workspace (mutable), where it runs, and a live output channel. */
export interface RunContext {
  /** path → bytes. Changes made here are what the "program" did to /workspace. */
  workspace: Map<string, Buffer>;
  /** The session id, or null for a one-shot run. */
  sessionId: string | null;
  /** The request's abort signal, if any. */
  signal: AbortSignal | undefined;
  /** Sends output live (through req.onOutput) and adds it to the result. */
  emit(stream: "stdout" | "stderr", data: string): void;
}

/** What a run handler returns; emitted output is prepended to stdout/stderr given here. */
export interface RunOutcome {
  stdout?: string;
  stderr?: string;
  exitCode?: number | null;
  timedOut?: boolean;
  durationMs?: number;
}

export type RunHandler = (req: ExecRequest, ctx: RunContext) => RunOutcome | Promise<RunOutcome>;

export interface InMemoryBackendOptions {
  kind?: string;
  capabilities?: Partial<BackendCapabilities>;
  /** Hard session lifetime (default 86400, like SESSION_MAX_LIFETIME_SECONDS). */
  sessionMaxLifetimeSeconds?: number;
  /** Per-file size limit for session file writes (default unlimited). */
  maxFileBytes?: number;
  /** The "program". Default: exit 0 with no output. */
  run?: RunHandler;
  /** Clock (unix ms). Default Date.now. */
  now?: () => number;
}

export interface BackendCall {
  method: string;
  args: unknown[];
}

export const ALL_CAPABILITIES: BackendCapabilities = {
  oneShot: true,
  sessions: true,
  sessionExec: true,
  sessionFiles: true,
  keepalive: true,
  reaper: true,
};

interface StoredSession {
  info: SessionInfo;
  workspace: Map<string, Buffer>;
}

function copyInfo(info: SessionInfo): SessionInfo {
  return { ...info, metadata: { ...info.metadata } };
}

export class InMemoryBackend implements Backend {
  readonly kind: string;
  capabilities: BackendCapabilities;
  /** Every interface call, in order (tests assert on this, e.g. "never called"). */
  readonly calls: BackendCall[] = [];
  /** When false, ping and every other method throw BackendUnavailableError. */
  available = true;
  run: RunHandler;
  now: () => number;
  closed = false;

  private readonly sessions = new Map<string, StoredSession>();
  private readonly maxLifetimeSeconds: number;
  private readonly maxFileBytes: number;

  constructor(opts: InMemoryBackendOptions = {}) {
    this.kind = opts.kind ?? "memory";
    this.capabilities = { ...ALL_CAPABILITIES, ...opts.capabilities };
    this.maxLifetimeSeconds = opts.sessionMaxLifetimeSeconds ?? 86_400;
    this.maxFileBytes = opts.maxFileBytes ?? Number.POSITIVE_INFINITY;
    this.run = opts.run ?? (() => ({ exitCode: 0 }));
    this.now = opts.now ?? Date.now;
  }

  /** Calls to one method (e.g. `callsTo("execute").length`). */
  callsTo(method: string): BackendCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** The raw workspace of a session (tests inspect or seed it). */
  workspaceOf(id: string): Map<string, Buffer> {
    const s = this.sessions.get(id);
    if (!s) throw new SessionNotFoundError(id);
    return s.workspace;
  }

  /** Number of sessions held, expired or not. */
  get size(): number {
    return this.sessions.size;
  }

  private enter(method: string, args: unknown[]): void {
    this.calls.push({ method, args });
    if (!this.available) throw new BackendUnavailableError(`${this.kind} backend is unavailable`);
  }

  private live(id: string, scope: Scope | undefined): StoredSession {
    const s = isSessionId(id) ? this.sessions.get(id) : undefined;
    if (!s || !inScope(s.info, scope) || isExpired(lifetimeOf(s.info), this.now())) {
      throw new SessionNotFoundError(id);
    }
    return s;
  }

  private touch(s: StoredSession): void {
    s.info.lastActiveAt = Math.max(s.info.lastActiveAt, this.now());
  }

  async ping(): Promise<void> {
    this.enter("ping", []);
  }

  async execute(req: OneShotRequest): Promise<ExecResult> {
    this.enter("execute", [req]);
    assertUniqueSafePaths(req.files.map((f) => f.path));
    const workspace = new Map<string, Buffer>();
    await this.stage(workspace, req.files);
    return this.runIn(workspace, null, req);
  }

  async createSession(req: CreateSessionRequest): Promise<SessionInfo> {
    this.enter("createSession", [req]);
    if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1 || req.ttlSeconds > this.maxLifetimeSeconds) {
      throw new ValidationError(`ttl_seconds must be between 1 and ${this.maxLifetimeSeconds}`);
    }
    assertUniqueSafePaths(req.files.map((f) => f.path));
    const metadata = validateMetadata(req.metadata);
    const id = newSessionId();
    const lifetime = newLifetime(this.now(), req.ttlSeconds, this.maxLifetimeSeconds, req.idleTimeoutSeconds);
    const workspace = new Map<string, Buffer>();
    await this.stage(workspace, req.files);
    const info: SessionInfo = { id, status: "running", ...lifetime, metadata, owner: req.owner };
    this.sessions.set(id, { info, workspace });
    return copyInfo(info);
  }

  async getSession(id: string, scope?: Scope): Promise<SessionInfo> {
    this.enter("getSession", [id, scope]);
    return copyInfo(this.live(id, scope).info);
  }

  async listSessions(scope?: Scope): Promise<SessionInfo[]> {
    this.enter("listSessions", [scope]);
    const now = this.now();
    return [...this.sessions.values()]
      .filter((s) => inScope(s.info, scope) && !isExpired(lifetimeOf(s.info), now))
      .map((s) => copyInfo(s.info));
  }

  async countSessions(scope?: Scope): Promise<number> {
    this.enter("countSessions", [scope]);
    const now = this.now();
    return [...this.sessions.values()].filter(
      (s) => inScope(s.info, scope) && !isExpired(lifetimeOf(s.info), now),
    ).length;
  }

  async deleteSession(id: string, scope?: Scope): Promise<void> {
    this.enter("deleteSession", [id, scope]);
    this.live(id, scope);
    this.sessions.delete(id);
  }

  async keepalive(id: string, ttlSeconds: number, scope?: Scope): Promise<SessionInfo> {
    this.enter("keepalive", [id, ttlSeconds, scope]);
    const s = this.live(id, scope);
    s.info.expiresAt = keepaliveExpiry(lifetimeOf(s.info), ttlSeconds, this.now());
    return copyInfo(s.info);
  }

  async execInSession(id: string, req: ExecRequest, scope?: Scope): Promise<ExecResult> {
    this.enter("execInSession", [id, req, scope]);
    const s = this.live(id, scope);
    this.touch(s);
    return this.runIn(s.workspace, id, req);
  }

  async writeSessionFile(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry> {
    this.enter("writeSessionFile", [id, path, { size: file.size }, scope]);
    assertSafeWorkspacePath(path);
    const s = this.live(id, scope);
    this.touch(s);
    if (file.size > this.maxFileBytes)
      throw new PayloadTooLargeError(`file is larger than ${this.maxFileBytes} bytes`);
    const bytes = await readAll(file.content);
    if (bytes.length > this.maxFileBytes)
      throw new PayloadTooLargeError(`file is larger than ${this.maxFileBytes} bytes`);
    for (const dir of parentDirs(path)) {
      if (s.workspace.has(dir))
        throw new ValidationError(`${JSON.stringify(dir)} is a file, not a directory`);
    }
    s.workspace.set(path, bytes);
    return { path, kind: "file", sizeBytes: bytes.length };
  }

  async readSessionFile(id: string, path: string, scope?: Scope): Promise<SessionFile> {
    this.enter("readSessionFile", [id, path, scope]);
    assertSafeWorkspacePath(path);
    const s = this.live(id, scope);
    this.touch(s);
    const bytes = s.workspace.get(path);
    if (!bytes) throw new NotFoundError(`no file ${JSON.stringify(path)} in the workspace`);
    return { sizeBytes: bytes.length, content: Readable.from([bytes]) };
  }

  async listSessionFiles(id: string, scope?: Scope): Promise<WorkspaceEntry[]> {
    this.enter("listSessionFiles", [id, scope]);
    const s = this.live(id, scope);
    this.touch(s);
    const dirs = new Set<string>();
    const entries: WorkspaceEntry[] = [];
    for (const [path, bytes] of s.workspace) {
      for (const d of parentDirs(path)) dirs.add(d);
      entries.push({ path, kind: "file", sizeBytes: bytes.length });
    }
    for (const d of dirs) entries.push({ path: d, kind: "directory", sizeBytes: 0 });
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async reap(now?: number): Promise<ReapReport> {
    this.enter("reap", [now]);
    const t = now ?? this.now();
    const report: ReapReport = { reaped: [], failed: [] };
    for (const [id, s] of this.sessions) {
      const reason = expiryReason(lifetimeOf(s.info), t);
      if (reason) {
        this.sessions.delete(id);
        report.reaped.push({ id, reason });
      }
    }
    return report;
  }

  async close(): Promise<void> {
    this.calls.push({ method: "close", args: [] });
    this.closed = true;
  }

  private async stage(workspace: Map<string, Buffer>, files: readonly StagedFile[]): Promise<void> {
    for (const f of files) workspace.set(f.path, await readAll(await f.open()));
  }

  private async runIn(
    workspace: Map<string, Buffer>,
    sessionId: string | null,
    req: ExecRequest,
  ): Promise<ExecResult> {
    const started = this.now();
    const before = new Map(workspace);
    const out = {
      stdout: new OutputLimiter(req.maxOutputBytes),
      stderr: new OutputLimiter(req.maxOutputBytes),
    };
    const emit = (stream: "stdout" | "stderr", data: string) => {
      const text = out[stream].push(Buffer.from(data));
      if (text) req.onOutput?.({ stream, data: text });
    };
    const outcome = await this.run(req, { workspace, sessionId, signal: req.signal, emit });
    if (outcome.stdout) emit("stdout", outcome.stdout);
    if (outcome.stderr) emit("stderr", outcome.stderr);
    const timedOut = outcome.timedOut ?? false;
    const files: ProducedFile[] = [];
    if (req.collectFiles) {
      for (const [path, bytes] of workspace) {
        const old = before.get(path);
        if (old && old.equals(bytes)) continue;
        const fileId = await req.collectFiles({ path, size: bytes.length, content: Readable.from([bytes]) });
        files.push({ path, kind: "file", fileId, sizeBytes: bytes.length });
      }
    }
    return {
      stdout: out.stdout.text(),
      stderr: out.stderr.text(),
      exitCode: timedOut ? null : (outcome.exitCode ?? 0),
      timedOut,
      durationMs: outcome.durationMs ?? Math.max(0, this.now() - started),
      files,
    };
  }
}

function parentDirs(path: string): string[] {
  const parts = path.split("/");
  const dirs: string[] = [];
  for (let i = 1; i < parts.length; i++) dirs.push(parts.slice(0, i).join("/"));
  return dirs;
}
