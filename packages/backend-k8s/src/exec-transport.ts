/**
 * core's ExecTransport over the Kubernetes exec API: a WebSocket to
 * `/api/v1/namespaces/{ns}/pods/{pod}/exec` speaking the channel protocol: stdin frames on
 * channel 0, stdout on 1, stderr on 2, and a final Status object on channel 3 that carries
 * the exit code. client-node's `Exec` offers `v5.channel.k8s.io` first, then v4 (and older);
 * the apiserver picks the first it speaks (v5 on clusters >= 1.30, v4 before).
 *
 * - v5 can half-close stdin: once the stdin source has been sent, the close-stream frame
 *   (channel 255, then stream 0) tells the command EOF.
 * - v4 cannot (ending stdin closes the whole socket), so there stdin is never ended. core's
 *   runner length-frames its stdin and staging tars are padded to a whole tar record, so no
 *   command needs an EOF on either protocol.
 *
 * The WebSocket opens with a handshake deadline (DeadlineWebSocketHandler): a hung
 * apiserver fails the call with BackendUnavailableError instead of hanging it.
 */
import { PassThrough, type Readable } from "node:stream";
import { Exec, type KubeConfig, type V1Status } from "@kubernetes/client-node";
import type { ExecOptions, ExecProcess, ExecTransport } from "@code-interpreter/core";
import { BackendError, SessionNotFoundError, isSessionId } from "@code-interpreter/core";
import { DEFAULT_K8S_REQUEST_TIMEOUT_MS, DeadlineKubeConfig, DeadlineWebSocketHandler } from "./deadline.js";
import { isNotFound, toCoreError } from "./k8s-errors.js";
import { EXECUTOR_CONTAINER } from "./pod-spec.js";

type ExecSocket = Awaited<ReturnType<Exec["exec"]>>;

const STDIN_CHANNEL = 0;
const CLOSE_CHANNEL = 255;
export const EXEC_V5_PROTOCOL = "v5.channel.k8s.io";
/** Largest stdin frame we send (the apiserver and kubelet accept much larger ones). */
const MAX_FRAME = 256 * 1024;

/** The exit code in an exec Status: 0 on Success, the ExitCode cause on NonZeroExitCode. */
export function exitCodeFromStatus(status: V1Status): number | null {
  if (status.status === "Success") return 0;
  if (status.reason === "NonZeroExitCode") {
    const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
    const code = Number(cause?.message);
    return Number.isInteger(code) ? code : null;
  }
  return null;
}

export class PodExecTransport implements ExecTransport {
  private readonly execApi: Exec;

  /**
   * @param handshakeTimeoutMs deadline of the WebSocket's opening handshake; default: the
   *   DeadlineKubeConfig's `execHandshakeTimeoutMs`, else DEFAULT_K8S_REQUEST_TIMEOUT_MS.
   */
  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly pod: string,
    private readonly container = EXECUTOR_CONTAINER,
    handshakeTimeoutMs?: number,
  ) {
    const timeout =
      handshakeTimeoutMs ??
      (kc instanceof DeadlineKubeConfig ? kc.execHandshakeTimeoutMs : DEFAULT_K8S_REQUEST_TIMEOUT_MS);
    this.execApi = new Exec(kc, new DeadlineWebSocketHandler(kc, timeout));
  }

  async exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecProcess> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const hasStdin = opts.stdin !== undefined && opts.stdin !== null;
    // client-node forwards 'data' of this stream; we never write to it (see sendStdin) and
    // never end it, because ending it closes the socket under v4.
    const stdinPlaceholder = hasStdin ? new PassThrough() : null;

    let status: V1Status | null = null;
    let ws: ExecSocket;
    try {
      ws = await this.execApi.exec(
        this.namespace,
        this.pod,
        this.container,
        cmd,
        stdout,
        stderr,
        stdinPlaceholder,
        false,
        (s) => {
          status = s;
        },
      );
    } catch (err) {
      stdout.destroy();
      stderr.destroy();
      if (isNotFound(err) && isSessionId(this.pod)) throw new SessionNotFoundError(this.pod);
      throw toCoreError(err, `exec in pod ${this.pod}`);
    }

    const done = new Promise<number | null>((resolve, reject) => {
      ws.addEventListener("close", () => {
        if (!stdout.writableEnded) stdout.end();
        if (!stderr.writableEnded) stderr.end();
        const s = status as V1Status | null;
        if (s === null) {
          reject(new BackendError(`exec in pod ${this.pod} ended without a status (connection lost)`));
          return;
        }
        const code = exitCodeFromStatus(s);
        if (code === null) {
          reject(
            new BackendError(`exec in pod ${this.pod} failed: ${s.message ?? s.reason ?? "unknown error"}`),
          );
          return;
        }
        resolve(code);
      });
    });
    done.catch(() => undefined); // callers that stop listening must not cause unhandled rejections

    if (hasStdin) {
      void this.sendStdin(ws, opts.stdin as Buffer | Readable).catch(() => {
        // The stdin source failed (e.g. a staged file could not be read): stop the command.
        ws.close();
      });
    }

    return {
      stdout,
      stderr,
      done,
      destroy: () => {
        try {
          ws.close();
        } catch {
          // already closed
        }
        if (!stdout.writableEnded) stdout.end();
        if (!stderr.writableEnded) stderr.end();
      },
    };
  }

  private async sendStdin(ws: ExecSocket, stdin: Buffer | Readable): Promise<void> {
    const send = (chunk: Buffer) =>
      new Promise<void>((resolve, reject) => {
        if (ws.readyState !== ws.OPEN) {
          reject(new Error("exec connection closed"));
          return;
        }
        const frame = Buffer.allocUnsafe(chunk.length + 1);
        frame[0] = STDIN_CHANNEL;
        chunk.copy(frame, 1);
        ws.send(frame, (err?: Error) => (err ? reject(err) : resolve()));
      });
    const source: AsyncIterable<unknown> | Iterable<unknown> = Buffer.isBuffer(stdin) ? [stdin] : stdin;
    for await (const c of source) {
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
      for (let off = 0; off < chunk.length; off += MAX_FRAME) {
        await send(chunk.subarray(off, off + MAX_FRAME));
      }
    }
    if (ws.protocol === EXEC_V5_PROTOCOL) {
      // v5: half-close stdin (the command sees EOF; stdout/stderr keep flowing).
      await new Promise<void>((resolve, reject) => {
        if (ws.readyState !== ws.OPEN) {
          reject(new Error("exec connection closed"));
          return;
        }
        ws.send(Buffer.from([CLOSE_CHANNEL, STDIN_CHANNEL]), (err?: Error) =>
          err ? reject(err) : resolve(),
        );
      });
    }
  }
}
