/**
 * core's ExecTransport on top of the Docker exec API: one hijacked connection per command,
 * demultiplexed into stdout/stderr, stdin half-closed after the last byte so the program
 * sees EOF, exit code from `exec.inspect()` once the output has been consumed.
 */
import { PassThrough, type Duplex, type Readable, type Writable } from "node:stream";
import type Dockerode from "dockerode";
import type { ExecOptions, ExecProcess, ExecTransport } from "@code-interpreter/core";
import { poll } from "@code-interpreter/core/backend-kit";

/** The one docker-modem function we use (dockerode types `modem` as any). */
export interface DemuxModem {
  demuxStream(stream: Readable, stdout: Writable, stderr: Writable): void;
}

export interface DockerExecTransportOptions {
  /** Upper bound for the exec create/inspect control calls; the stream itself has none. */
  apiTimeoutMs?: number;
}

/** How long `done` keeps asking for the exit code after the output ended. */
const EXIT_CODE_POLL_MS = 2_000;
const EXIT_CODE_POLL_STEP_MS = 20;

export class DockerExecTransport implements ExecTransport {
  private readonly modem: DemuxModem;
  private readonly apiTimeoutMs: number;

  constructor(
    private readonly container: Dockerode.Container,
    opts: DockerExecTransportOptions = {},
  ) {
    this.modem = container.modem as DemuxModem;
    this.apiTimeoutMs = opts.apiTimeoutMs ?? 30_000;
  }

  async exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecProcess> {
    const stdin = opts.stdin ?? null;
    const hasStdin = stdin !== null;
    const exec = await this.container.exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: hasStdin,
      Tty: false,
      // Always the container's own (unprivileged) user: nothing of ours ever runs as root.
      abortSignal: AbortSignal.timeout(this.apiTimeoutMs),
    });
    let sock: Duplex;
    try {
      sock = await exec.start({ hijack: true, stdin: hasStdin, Detach: false, Tty: false });
    } catch (err) {
      if (stdin && !Buffer.isBuffer(stdin)) stdin.destroy();
      throw err;
    }

    const stdout = new PassThrough();
    const stderr = new PassThrough();
    // Errors on the connection end the output; `done` then reports what the engine knows.
    sock.on("error", () => undefined);
    this.modem.demuxStream(sock, stdout, stderr);

    // Bounded memory: stop reading the socket while a consumer is behind.
    const behind = () => stdout.writableNeedDrain || stderr.writableNeedDrain;
    sock.on("data", () => {
      if (behind()) sock.pause();
    });
    const maybeResume = () => {
      if (!behind() && !sock.destroyed) sock.resume();
    };
    stdout.on("drain", maybeResume);
    stderr.on("drain", maybeResume);

    let outputEnded = false;
    const endOutput = () => {
      if (outputEnded) return;
      outputEnded = true;
      stdout.end();
      stderr.end();
    };
    sock.on("end", endOutput);
    sock.on("close", endOutput);
    sock.on("error", endOutput);

    if (hasStdin) {
      if (Buffer.isBuffer(stdin)) {
        sock.write(stdin);
        sock.end(); // half-close: the engine closes the program's stdin (EOF)
      } else if (stdin) {
        if (stdin.destroyed || stdin.errored) {
          // Failed before we got here (e.g. a staged file could not be opened): abandon the run.
          sock.destroy();
        } else {
          stdin.on("error", () => sock.destroy());
          stdin.on("close", () => {
            if (!stdin.readableEnded) sock.destroy(); // destroyed without an end: never a clean EOF
          });
          stdin.pipe(sock); // ends (half-closes) the socket at the end
        }
      }
    }

    const finished = (s: Readable) =>
      new Promise<void>((resolve) => {
        if (s.readableEnded || s.destroyed) return resolve();
        s.once("end", resolve);
        s.once("close", resolve);
      });

    const exitCode = async (): Promise<number | null | undefined> => {
      try {
        const info = await exec.inspect({ abortSignal: AbortSignal.timeout(this.apiTimeoutMs) });
        if (info.Running) return undefined; // ask again
        return typeof info.ExitCode === "number" ? info.ExitCode : null;
      } catch {
        return null; // container removed (one-shot kill) or engine gone: unknown
      }
    };
    const done = Promise.all([finished(stdout), finished(stderr)]).then(() =>
      poll(exitCode, { timeoutMs: EXIT_CODE_POLL_MS, intervalMs: EXIT_CODE_POLL_STEP_MS }).catch(() => null),
    );

    return {
      stdout,
      stderr,
      done,
      destroy: () => {
        if (stdin && !Buffer.isBuffer(stdin)) stdin.unpipe(sock);
        sock.destroy();
        stdout.destroy();
        stderr.destroy();
      },
    };
  }
}
