/**
 * Bearer-token auth. Keys are compared as SHA-256 digests with timingSafeEqual, against every
 * configured key (no early exit), so timing says nothing about how much of a key matched.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { ownerTag } from "@code-interpreter/core";
import { setContext } from "./context.js";
import { UnauthorizedError } from "./http-errors.js";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

export function authMiddleware(apiKeys: readonly string[]): RequestHandler {
  const keys = apiKeys.map((key) => ({ digest: digest(key), owner: ownerTag(key) }));
  return (req, _res, next) => {
    if (keys.length === 0) {
      setContext(req, { owner: null });
      return next();
    }
    const header = req.headers.authorization;
    const match = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
    if (!match) throw new UnauthorizedError("missing API key: send Authorization: Bearer <key>");
    const given = digest(match[1] as string);
    let owner: string | null = null;
    for (const key of keys) {
      if (timingSafeEqual(key.digest, given) && owner === null) owner = key.owner;
    }
    if (owner === null) throw new UnauthorizedError("invalid API key");
    setContext(req, { owner });
    next();
  };
}
