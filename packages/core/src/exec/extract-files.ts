/** The files a run collected (a tar from the runner or the agent), checked and handed to the sink. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { ExecRequest, ProducedFile } from "../backend.js";
import { workspacePathProblem } from "../paths.js";
import { ProtocolViolation } from "./runner-stream.js";

/**
 * Hands each collected file to the sink, enforcing in TypeScript what the runner promises:
 * at most `maxFiles` entries, each a regular file no larger than `maxFileBytes`, at a safe
 * workspace path. A breach rejects with ProtocolViolation.
 */
export async function extractFiles(
  tarBytes: Readable,
  sink: NonNullable<ExecRequest["collectFiles"]>,
  limits: { maxFiles: number; maxFileBytes: number },
): Promise<ProducedFile[]> {
  const files: ProducedFile[] = [];
  const seen = new Set<string>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    stream.on("error", () => undefined); // the pipeline reports it
    const reject = (why: string) => {
      stream.resume();
      next(new ProtocolViolation(why));
    };
    if (header.type !== "file") return reject(`a collected entry of type ${String(header.type)}`);
    const problem = workspacePathProblem(header.name);
    if (problem !== null) return reject(`a collected file at an unsafe path (${problem})`);
    if (seen.has(header.name)) return reject("a collected file sent twice");
    if (files.length >= limits.maxFiles) return reject(`more than ${limits.maxFiles} collected files`);
    const size = header.size ?? 0;
    if (!Number.isSafeInteger(size) || size < 0 || size > limits.maxFileBytes)
      return reject(`a collected file larger than ${limits.maxFileBytes} bytes`);
    seen.add(header.name);
    sink({ path: header.name, size, content: Readable.from(stream) })
      .then((fileId) => {
        files.push({ path: header.name, kind: "file", fileId, sizeBytes: size });
        stream.resume(); // in case the sink did not read everything
        next();
      })
      .catch((e: unknown) => {
        stream.resume();
        next(e as Error);
      });
  });
  await pipeline(tarBytes, extract);
  return files;
}
