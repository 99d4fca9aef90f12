#!/usr/bin/env node
// `npm run bench -- <suite> [options]`: runs a benchmark suite written in TypeScript (bench/<suite>.ts) without a
// build step, by compiling on require with @swc/core (already a dev dependency for jest).
// Each suite prints its figures beside a baseline measured in the same run, with the ratio.
const path = require('node:path');
require('../scripts/ts-register.js');
require('reflect-metadata');

const SUITES = {
  store: ['./store.ts', 'runStoreBench'],
  ca: ['./ca.ts', 'runCaBench'],
  enroll: ['./enroll.ts', 'runEnrollBench'],
  decisions: ['./decisions.ts', 'runDecisionsBench'],
  audit: ['./audit.ts', 'runAuditBench'],
  'openvpn-connect': ['./openvpn-connect.ts', 'runOpenVpnConnectBench'],
};

async function main() {
  const [suite, ...rest] = process.argv.slice(2);
  if (!suite || suite === '--help' || !SUITES[suite]) {
    process.stderr.write(`usage: npm run bench -- <${Object.keys(SUITES).join('|')}> [--json] [suite options]\n`);
    process.exit(suite && suite !== '--help' ? 2 : 0);
  }
  const [file, fn] = SUITES[suite];
  const mod = require(path.join(__dirname, file));
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(rest[i]);
    if (!m) continue;
    const key = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = m[2] ?? (rest[i + 1] && !rest[i + 1].startsWith('--') ? rest[++i] : 'true');
    opts[key] = /^\d+$/.test(value) ? Number(value) : value === 'true' ? true : value;
  }
  const result = await mod[fn](opts);
  if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e.stack || e}\n`);
  process.exit(1);
});
