/**
 * The interface every executor backend implements (Docker, Kubernetes, or your own).
 * The API only talks to this; each method throws the typed errors from ./errors.js.
 */
import type { Readable } from "node:stream";
import type { WarmPoolEvents } from "./sessions/warm-pool.js";
import type { ReapReason } from "./lifetime.js";

export type Language = "python" | "bash";

/** A file to put into /workspace before code runs. `open` is called at most once. */
export interface StagedFile {
  /** Safe relative path inside /workspace (see assertSafeWorkspacePath). */
  path: string;
  size: number;
  open: () => Promise<Readable>;
}

/** A file the code created or changed, handed to the caller's store. Returns the new file id. */
export type FileCollector = (file: { path: string; size: number; content: Readable }) => Promise<string>;

export interface OutputEvent {
  stream: "stdout" | "stderr";
  data: string;
}

export interface ExecRequest {
  language: Language;
  /** Python source, or a shell command line for bash. */
  code: string;
  stdin?: string | null;
  timeoutMs: number;
  /** Python only: a bare expression on the last line prints its value (default true). */
  lastLineInteractive?: boolean;
  /** Each of stdout/stderr is cut at this many bytes and ends with TRUNCATION_MARKER. */
  maxOutputBytes: number;
  /** Called while the program runs, in order, with at most maxOutputBytes per stream. */
  onOutput?: (event: OutputEvent) => void;
  /** Aborting (e.g. the client went away) kills the program as a timeout would. */
  signal?: AbortSignal;
  /** When given, files created or changed under /workspace are passed to it. */
  collectFiles?: FileCollector;
  /**
   * Sessions only: clear the session's Python state (a fresh interpreter) before running.
   * The result then carries `stateReset: { reason: "reset requested" }`.
   */
  resetState?: boolean;
}

export interface OneShotRequest extends ExecRequest {
  files: StagedFile[];
}

export interface ProducedFile {
  path: string;
  kind: "file";
  fileId: string;
  sizeBytes: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** null when the program was killed (timeout or abort). */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  files: ProducedFile[];
  /**
   * Sessions only: set when the session's Python state was lost before or during this call
   * (a reset was asked for, a cell ignored its interrupt and was killed, or the session's
   * agent was killed and restarted). Absent or null: the state carried over.
   */
  stateReset?: StateReset | null;
}

/** Why a session's Python state was cleared. */
export interface StateReset {
  reason: string;
}

export type SessionStatus = "pending" | "running" | "stopped";

export interface SessionInfo {
  id: string;
  status: SessionStatus;
  /** Unix milliseconds. */
  createdAt: number;
  expiresAt: number;
  maxExpiresAt: number;
  lastActiveAt: number;
  idleTimeoutSeconds: number | null;
  metadata: Record<string, string>;
  /** Owner tag (hash of the API key) or null when keys are not in use. */
  owner: string | null;
}

export interface CreateSessionRequest {
  files: StagedFile[];
  ttlSeconds: number;
  idleTimeoutSeconds: number | null;
  metadata: Record<string, string>;
  owner: string | null;
}

/**
 * Who is asking. When `owner` is a string, sessions of any other owner are reported as not
 * found; `undefined` means "any owner" (the reaper, admin tools).
 */
export interface Scope {
  owner?: string | null;
}

export interface WorkspaceEntry {
  path: string;
  kind: "file" | "directory";
  sizeBytes: number;
}

export interface SessionFile {
  sizeBytes: number;
  content: Readable;
}

export interface ReapReport {
  reaped: Array<{ id: string; reason: ReapReason }>;
  failed: Array<{ id: string; error: string }>;
}

export interface BackendCapabilities {
  oneShot: boolean;
  sessions: boolean;
  sessionExec: boolean;
  sessionFiles: boolean;
  keepalive: boolean;
  reaper: boolean;
}

/** The numbers of a warm pool: its target size, ready members, members being made. */
export interface WarmPoolStats {
  size: number;
  ready: number;
  creating: number;
}

/** A backend's warm pool (issue 10), for metrics and operators. */
export interface WarmPoolMonitor {
  stats(): WarmPoolStats;
  /** Adds metrics hooks (see WarmPoolEvents); returns the function that removes them. */
  observe(events: WarmPoolEvents): () => void;
  /** Stops the pool and removes every member on the platform (every process's). */
  drain(): Promise<number>;
}

export interface Backend {
  /** "docker", "kubernetes", ... shown by /health. */
  readonly kind: string;
  readonly capabilities: BackendCapabilities;
  /** The warm pool of ready executors, when the backend keeps one (null or absent: none). */
  readonly warmPool?: WarmPoolMonitor | null;

  /** Resolves when the platform answers; throws BackendUnavailableError otherwise. */
  ping(): Promise<void>;

  /** Runs code in a fresh, locked-down container/pod that is always removed afterwards. */
  execute(req: OneShotRequest): Promise<ExecResult>;

  createSession(req: CreateSessionRequest): Promise<SessionInfo>;
  /** Throws SessionNotFoundError for unknown, foreign, expired or non-session ids. */
  getSession(id: string, scope?: Scope): Promise<SessionInfo>;
  listSessions(scope?: Scope): Promise<SessionInfo[]>;
  /** How many sessions listSessions(scope) would return (what MAX_SESSIONS counts). */
  countSessions(scope?: Scope): Promise<number>;
  /** Throws SessionNotFoundError when there is nothing (of ours) to delete. */
  deleteSession(id: string, scope?: Scope): Promise<void>;
  /** Moves expiresAt to now + ttl, never past maxExpiresAt. */
  keepalive(id: string, ttlSeconds: number, scope?: Scope): Promise<SessionInfo>;

  /** Runs in the session's /workspace; a timeout kills the program, not the session. */
  execInSession(id: string, req: ExecRequest, scope?: Scope): Promise<ExecResult>;
  writeSessionFile(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry>;
  /** Throws NotFoundError when the path is not a regular file. */
  readSessionFile(id: string, path: string, scope?: Scope): Promise<SessionFile>;
  listSessionFiles(id: string, scope?: Scope): Promise<WorkspaceEntry[]>;

  /** Deletes expired/idle sessions and orphaned one-shot executors. Safe to run concurrently. */
  reap(now?: number): Promise<ReapReport>;

  /**
   * Stops everything the backend started (timers, background removals, pending activity
   * writes) and releases its clients. Every later call throws BackendUnavailableError.
   */
  close(): Promise<void>;
}

/** The logging surface backends use; pino loggers satisfy it. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
