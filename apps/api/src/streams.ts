import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Response } from "express";

/**
 * Streams bytes as the response body. A client that goes away mid-download is not an error
 * worth a log line; a source that fails mid-way cuts the connection (the status is already sent).
 */
export async function sendStream(
  res: Response,
  content: Readable,
  headers: { size: number; disposition?: string },
): Promise<void> {
  res.status(200);
  res.setHeader("Content-Type", "application/octet-stream");
  res.setHeader("Content-Length", String(headers.size));
  if (headers.disposition) res.setHeader("Content-Disposition", headers.disposition);
  res.setHeader("X-Content-Type-Options", "nosniff");
  try {
    await pipeline(content, res);
  } catch (err) {
    // The client went away (pipeline has already destroyed both ends).
    if ((err as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE") return;
    throw err;
  }
}
