/**
 * Error → HTTP mapping. Every error answer is JSON `{"detail": "..."}`; stacks are logged,
 * never sent.
 */
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
  // body-parser (express.json) errors carry `type`, `status` and `expose`.
  if (typeof err === "object" && err !== null && "type" in err && "status" in err) {
    const e = err as { type: unknown; status: unknown; expose?: unknown; message?: unknown; limit?: unknown };
    if (e.type === "entity.parse.failed") {
      return { status: 400, detail: `malformed JSON body: ${String(e.message)}`, unexpected: false };
    }
    if (e.type === "entity.too.large") {
      return {
        status: 413,
        detail: `request body is larger than ${String(e.limit)} bytes`,
        unexpected: false,
      };
    }
    if (typeof e.status === "number" && e.status >= 400 && e.status < 500 && e.expose) {
      return { status: e.status, detail: String(e.message), unexpected: false };
    }
  }
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
    res.status(answer.status).json({ detail: answer.detail });
  };
}

export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).json({ detail: "Not Found" });
};
