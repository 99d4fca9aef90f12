#!/usr/bin/env node
// Launcher for the compiled CLI (`npm run build` produces dist/; `npm ci` runs it through `prepare`).
const { buildProgram } = require("../dist/cli/index.js");
buildProgram().parseAsync(process.argv).catch((e) => {
  process.stderr.write(`devicegate: ${e.message}\n`);
  process.exitCode = 2;
});
