#!/usr/bin/env node
/** The code-interpreter-api binary. Configuration: environment variables (see README). */
import { runMain } from "./cli.js";

runMain().catch((err: unknown) => {
  console.error("code-interpreter API failed to start:", err);
  process.exit(1);
});
