#!/usr/bin/env node
'use strict';
// Thin launcher: the agent is TypeScript compiled to dist/ by `npm run build`.
let cli;
try {
  cli = require('../dist/agent/cli.js');
} catch (e) {
  if (e.code !== 'MODULE_NOT_FOUND') throw e;
  process.stderr.write('devicegate-agent: dist/agent/cli.js not found; run "npm run build" first\n');
  process.exit(2);
}
cli.main(process.argv.slice(2)).then((code) => process.exit(code));
