/**
 * The run request (Python cell or bash command) on an agent channel: the frames it sends and how
 * its answers are checked - output within the cap asked for, collected files within count and
 * size (flow-controlled), one well-formed final result. A broken rule ends the run with what
 * arrived and closes the channel.
 */
import { PassThrough } from "node:stream";
import type { ExecRequest, ExecResult, ProducedFile, StateReset } from "../backend.js";
import { BackendError } from "../errors.js";
import { extractFiles, ProtocolViolation } from "../exec-runner.js";
import { OutputLimiter } from "../output.js";
import {
  AgentChannelError,
  agentError,
  chunkFrames,
  isCount,
  jsonFrame,
  parseJson,
  type Call,
  type Pending,
  type Started,
} from "./connection.js";
import { AGENT_MAX_PAYLOAD, AgentReplyKind, AgentRequestKind, encodeAgentFrame } from "./protocol.js";

export type { StateReset };

export type AgentExecResult = ExecResult & { stateReset?: StateReset };

/** Collected files run at most this far ahead of the file store. */
const FILES_WINDOW_BYTES = 1 << 20;

export interface RunContext {
  /** Cap on files collected from one run. */
  maxFiles: number;
  /** Per-file cap for collected files. */
  maxFileBytes: number;
  /** How long collection may go on past the run's deadline while it progresses. */
  opTimeoutMs: number;
  /** CPU seconds per run (RLIMIT_CPU); 0 = none. */
  cpuSeconds: number;
}

/** The request's start (see AgentChannel.request): its frames and its answer's checks. */
export function runRequest(req: ExecRequest, ctx: RunContext): (call: Call<AgentExecResult>) => Started {
  const sink = req.collectFiles;
  const forwardLimit = req.maxOutputBytes + 1;
  const maxFileBytes = ctx.maxFileBytes;
  const maxTar = ctx.maxFiles * (maxFileBytes + 512 + 4096) + 2 * 10240;
  const kind = req.language === "bash" ? AgentRequestKind.bash : AgentRequestKind.python;
  const args = {
    code: req.code,
    stdin: req.stdin ?? "",
    timeout_ms: Math.max(1, Math.floor(req.timeoutMs)),
    interactive: req.language === "python" && req.lastLineInteractive !== false,
    collect: !!sink,
    forward_limit: forwardLimit,
    max_files: ctx.maxFiles,
    max_bytes: maxFileBytes,
    files_window: FILES_WINDOW_BYTES,
    cpu_seconds: Math.max(0, Math.floor(ctx.cpuSeconds)),
  };
  const started = Date.now();
  return ({ id, conn, settle, extend }) => {
    const out = new OutputLimiter(req.maxOutputBytes);
    const err = new OutputLimiter(req.maxOutputBytes);
    const got = { out: 0, err: 0, tar: 0 };
    /** Collected bytes acknowledged to the agent, and delivered but not acknowledged. */
    let tarTaken = 0;
    let tarUnacked = 0;
    const tarAck = () => {
      if (tarUnacked === 0) return;
      const n = Buffer.alloc(4);
      n.writeUInt32BE(tarUnacked);
      tarTaken += tarUnacked;
      tarUnacked = 0;
      conn.sendQuiet(encodeAgentFrame(AgentRequestKind.ack, id, n));
    };
    let tar: PassThrough | null = null;
    let collecting: Promise<ProducedFile[]> | null = null;
    let onAbort: (() => void) | undefined;
    const cleanup = () => {
      if (onAbort) req.signal?.removeEventListener("abort", onAbort);
    };
    const violation = (why: string) => {
      cleanup();
      tar?.destroy();
      const note = `[code-interpreter] the run was stopped: the session agent broke the protocol (${why})`;
      settle(null, {
        stdout: out.text(),
        stderr: err.text() + (err.text() ? "\n" : "") + note,
        exitCode: null,
        timedOut: false,
        durationMs: Date.now() - started,
        files: [],
      });
      conn.close(new AgentChannelError(`the session agent broke the protocol (${why})`));
    };
    const emit = (limiter: OutputLimiter, stream: "stdout" | "stderr", b: Buffer) => {
      const text = limiter.push(b);
      if (text && req.onOutput) req.onOutput({ stream, data: text });
    };
    if (req.signal) {
      onAbort = () => conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
      req.signal.addEventListener("abort", onAbort, { once: true });
    }
    let answered = false;
    const pending: Pending = {
      onFrame: (k, payload) => {
        if (answered) return violation("frames after the result");
        if (k === AgentReplyKind.stdout || k === AgentReplyKind.stderr) {
          const key = k === AgentReplyKind.stdout ? "out" : "err";
          got[key] += payload.length;
          if (got[key] > forwardLimit)
            return violation(`more ${key === "out" ? "stdout" : "stderr"} than asked for`);
          emit(key === "out" ? out : err, key === "out" ? "stdout" : "stderr", payload);
        } else if (k === AgentReplyKind.files) {
          if (!sink) return violation("files were sent but none were asked for");
          got.tar += payload.length;
          if (got.tar > maxTar) return violation("too many collected bytes");
          if (!tar) {
            tar = new PassThrough();
            tar.on("error", () => undefined);
            tar.on("drain", tarAck);
            collecting = extractFiles(tar, sink, { maxFiles: ctx.maxFiles, maxFileBytes });
            collecting.catch((e: unknown) => {
              if (e instanceof ProtocolViolation) violation(e.message);
              // The file store failed: the agent stops collecting (it waits for acks).
              else conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
            });
          }
          if (got.tar - tarTaken > FILES_WINDOW_BYTES + AGENT_MAX_PAYLOAD)
            return violation("collected files beyond the window");
          tarUnacked += payload.length;
          extend(ctx.opTimeoutMs); // collection may outlast the run's deadline while it progresses
          if (!tar.destroyed && tar.write(payload)) tarAck();
        } else if (k === AgentReplyKind.result) {
          const r = parseJson(payload);
          const code = r?.exit_code;
          if (
            r === null ||
            !(
              code === null ||
              (Number.isInteger(code) && (code as number) >= 0 && (code as number) <= 512)
            ) ||
            typeof r.timed_out !== "boolean" ||
            !isCount(r.duration_ms)
          )
            return violation("a malformed result");
          const reset =
            r.state_reset === true
              ? {
                  reason: typeof r.reason === "string" ? r.reason.slice(0, 500) : "the Python state was lost",
                }
              : undefined;
          answered = true;
          cleanup();
          (tar as PassThrough | null)?.end();
          const done = (files: ProducedFile[]) =>
            settle(null, {
              stdout: out.text(),
              stderr: err.text(),
              exitCode: code as number | null,
              timedOut: r.timed_out as boolean,
              durationMs: r.duration_ms as number,
              files,
              ...(reset ? { stateReset: reset } : {}),
            });
          if (!collecting) return done([]);
          // Files stay in the pending map until extracted: late violations still count.
          (collecting as Promise<ProducedFile[]>).then(done, (e: unknown) => {
            if (!(e instanceof ProtocolViolation))
              settle(new BackendError(`collecting output files failed: ${(e as Error).message}`));
          });
        } else if (k === AgentReplyKind.error) {
          cleanup();
          tar?.destroy();
          settle(agentError(payload, req.language === "bash" ? "running bash" : "running python"));
        } else violation(`an unexpected frame kind 0x${k.toString(16)}`);
      },
      fail: (e) => {
        cleanup();
        tar?.destroy();
        settle(e);
      },
      onDeadline: () => {
        // The agent (or the platform stream under it) stopped answering: the call ends as
        // a timeout with what arrived, and the channel is closed (the next call reopens it;
        // the agent, which ends the cell at its own deadline, keeps the state).
        if (answered) return false;
        answered = true;
        cleanup();
        tar?.destroy();
        const note = `[code-interpreter] the session agent did not answer in time; the run was abandoned`;
        settle(null, {
          stdout: out.text(),
          stderr: err.text() + (err.text() ? "\n" : "") + note,
          exitCode: null,
          timedOut: true,
          durationMs: Date.now() - started,
          files: [],
        });
        conn.close(new AgentChannelError("the session agent stopped answering"));
        return true;
      },
    };
    const body = Buffer.from(JSON.stringify(args), "utf8");
    // Too large for one frame (long code or stdin): a header, then the JSON in chunks.
    const frames =
      body.length <= AGENT_MAX_PAYLOAD
        ? [encodeAgentFrame(kind, id, body)]
        : [
            jsonFrame(kind, id, { body_bytes: body.length }),
            ...chunkFrames(AgentRequestKind.chunk, id, body),
          ];
    return { pending, send: () => conn.send(frames) };
  };
}
