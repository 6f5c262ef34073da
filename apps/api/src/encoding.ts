import type { RequestHandler } from "express";
import { CodeInterpreterError } from "@code-interpreter/core";

/** 415: a body in an encoding or media type this route does not take. */
export class UnsupportedMediaTypeError extends CodeInterpreterError {
  readonly status = 415;
  readonly code = "unsupported_media_type";
}

/**
 * For routes that store the body's bytes as they come (multipart uploads, raw workspace
 * writes): a `Content-Encoding` other than identity → 415 rather than silently storing the
 * compressed bytes (the size must be known before the bytes are sent on, so there is no
 * decoding here; JSON routes do decode gzip, deflate and br).
 */
export const identityEncodingOnly: RequestHandler = (req, _res, next) => {
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity" && encoding.trim() !== "") {
    throw new UnsupportedMediaTypeError(
      `Content-Encoding ${JSON.stringify(encoding)} is not accepted on this route: send the file's bytes uncompressed`,
    );
  }
  next();
};
