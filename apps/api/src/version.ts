import { createRequire } from "node:module";

// src/version.ts and dist/version.js both sit one level below the package root.
const pkg = createRequire(import.meta.url)("../package.json") as { name: string; version: string };

/** The version of @code-interpreter/api, reported by GET /health. */
export const API_VERSION: string = pkg.version;
export const API_PACKAGE_NAME: string = pkg.name;
