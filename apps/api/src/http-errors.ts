/**
 * Error → HTTP mapping. Every error answer is JSON `{"detail": "..."}`; stacks are logged,
 * never sent.
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorRequestHandler, RequestHandler } from "express";
import multer from "multer";
import { ZodError } from "zod";
import { CodeInterpreterError } from "@code-interpreter/core";

/** 401: missing or wrong API key. */
export class UnauthorizedError extends CodeInterpreterError {
  readonly status = 401;
  readonly code = "unauthorized";
}

/** 400: the body cannot be read (malformed JSON or multipart). */
export class BadRequestError extends CodeInterpreterError {
  readonly status = 400;
  readonly code = "bad_request";
}

/** 411: a raw upload without Content-Length. */
export class LengthRequiredError extends CodeInterpreterError {
  readonly status = 411;
  readonly code = "length_required";
}

export interface ErrorAnswer {
  status: number;
  detail: string;
  /** True when the error is not one we raised on purpose: log it with its stack. */
  unexpected: boolean;
}

/** Formats zod issues as "field: problem; other.field: problem". */
export function formatZodError(err: ZodError): string {
  return err.issues
    .map((i) => {
      const path = i.path.map(String).join(".");
      return path ? `${path}: ${i.message}` : `body: ${i.message}`;
    })
    .join("; ");
}

const MULTER_STATUS: Record<string, number> = {
  LIMIT_FILE_SIZE: 413,
  LIMIT_PART_COUNT: 413,
  LIMIT_FIELD_COUNT: 413,
  LIMIT_FIELD_VALUE: 413,
  LIMIT_FIELD_KEY: 413,
  LIMIT_FILE_COUNT: 422,
  LIMIT_UNEXPECTED_FILE: 422,
};

/** A 4xx status carried by an error of a library (`status` or `statusCode`), else undefined. */
function clientStatusOf(err: object): number | undefined {
  const e = err as { status?: unknown; statusCode?: unknown };
  const status = typeof e.status === "number" ? e.status : e.statusCode;
  return typeof status === "number" && Number.isInteger(status) && status >= 400 && status < 500
    ? status
    : undefined;
}

/**
 * Errors raised by Express's own machinery (body-parser, the router, http-errors) that carry a
 * client status keep it: malformed JSON, bodies over the limit, unsupported charsets and
 * content encodings, bodies that do not decompress (gzip/deflate/br garbage), invalid
 * percent-encoding in the path. Messages are ours where the library's would be unclear;
 * an unexposed message is replaced by the status text.
 */
function clientErrorAnswer(err: unknown): ErrorAnswer | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const status = clientStatusOf(err);
  if (status === undefined) return undefined;
  const e = err as { type?: unknown; expose?: unknown; message?: unknown; limit?: unknown; code?: unknown };
  const message = typeof e.message === "string" ? e.message : "";
  let detail: string;
  if (e.type === "entity.parse.failed") {
    detail = `malformed JSON body: ${message}`;
  } else if (e.type === "entity.too.large") {
    detail = `request body is larger than ${String(e.limit)} bytes`;
  } else if (e.type === "encoding.unsupported") {
    detail = `${message}; send the body uncompressed or with Content-Encoding gzip, deflate or br`;
  } else if (e.type === "charset.unsupported") {
    detail = `${message}; JSON bodies must be UTF-8`;
  } else if (typeof e.code === "string" && /^(Z_|ERR__|ERR_BROTLI)/.test(e.code)) {
    // zlib/brotli: the body does not decompress with the Content-Encoding it claims.
    detail = `the request body could not be decompressed: ${message}`;
  } else if (err instanceof URIError) {
    detail = "the URL path is not valid percent-encoded UTF-8";
  } else if (e.type === "request.aborted") {
    detail = "the request was aborted before its body was complete";
  } else if (e.type === "request.size.invalid") {
    detail = "the request body does not match its Content-Length";
  } else {
    detail = e.expose === true && message ? message : (STATUS_CODES[status] ?? "Bad Request");
  }
  return { status, detail, unexpected: false };
}

export function toErrorAnswer(err: unknown, maxFileBytes?: number): ErrorAnswer {
  if (err instanceof CodeInterpreterError) {
    return { status: err.status, detail: err.message, unexpected: err.status >= 500 && err.status !== 503 };
  }
  if (err instanceof ZodError) return { status: 422, detail: formatZodError(err), unexpected: false };
  if (err instanceof multer.MulterError) {
    const status = MULTER_STATUS[err.code] ?? 400;
    let detail = err.message;
    if (err.code === "LIMIT_FILE_SIZE") {
      detail = `file is larger than the limit of ${maxFileBytes ?? "the configured"} bytes (MAX_FILE_SIZE_MB)`;
    } else if (err.code === "LIMIT_UNEXPECTED_FILE") {
      detail = `unexpected multipart file field ${JSON.stringify(err.field ?? "")}; send the file in field "file"`;
    } else if (err.code === "LIMIT_FILE_COUNT") {
      detail = "only one file may be uploaded per request";
    }
    return { status, detail, unexpected: false };
  }
  const client = clientErrorAnswer(err);
  if (client) return client;
  return { status: 500, detail: "Internal Server Error", unexpected: true };
}

export function errorHandler(opts: { maxFileBytes: number }): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const answer = toErrorAnswer(err, opts.maxFileBytes);
    if (answer.unexpected) {
      req.log?.error({ err }, "request failed");
    } else if (answer.status >= 500) {
      req.log?.warn(
        { err: { message: (err as Error).message, code: (err as { code?: string }).code } },
        "backend error",
      );
    }
    if (res.headersSent) {
      // Too late for a status: the body was already streaming. Cut the connection so the
      // client sees a broken transfer rather than a silently short one.
      res.destroy();
      return;
    }
    if (answer.status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="code-interpreter"');
    // Capacity frees up as sessions end: clients (ours retry on it) may try again shortly.
    if (answer.status === 429) res.setHeader("Retry-After", "1");
    res.status(answer.status).json({ detail: answer.detail });
  };
}

export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).json({ detail: "Not Found" });
};

/**
 * For `server.on("clientError", ...)`: requests Node's HTTP parser rejects before Express sees
 * them (oversized headers → 431, a malformed request line, header or Content-Length → 400)
 * get a JSON `{"detail"}` answer too, instead of Node's empty one. Sockets that are already
 * gone, or that already carry a response, are just destroyed.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || busy?.headersSent) {
    socket.destroy();
    return;
  }
  const status =
    err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const detail =
    status === 431
      ? "the request's headers are too large"
      : status === 408
        ? "the request was not received in time"
        : `malformed HTTP request (${err.code ?? "parse error"})`;
  const body = JSON.stringify({ detail });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Connection: close\r\n\r\n" +
      body,
  );
}
