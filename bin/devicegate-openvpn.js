#!/usr/bin/env node
'use strict';
// Launcher of the OpenVPN adapters (`mgmt` daemon, `hook` scripts). The code lives in the compiled
// dist/adapters/openvpn/cli.js (`npm run build`); this file only wires the process to it.
const path = require('node:path');

let cli;
try {
  cli = require(path.join(__dirname, '..', 'dist', 'adapters', 'openvpn', 'cli.js'));
} catch (e) {
  process.stderr.write(`devicegate-openvpn: cannot load dist/adapters/openvpn/cli.js (run npm run build): ${e.message}\n`);
  // Exit 1: as an OpenVPN hook this is a deny, never an accidental allow.
  process.exit(1);
}

let stop;
const stopSignal = new Promise((resolve) => {
  stop = resolve;
});
process.once('SIGTERM', () => stop());
process.once('SIGINT', () => stop());

cli
  .main(process.argv.slice(2), process.env, { self: [process.execPath, __filename], stopSignal })
  .then((code) => process.exit(code))
  .catch((e) => {
    process.stderr.write(`devicegate-openvpn: ${e && e.message}\n`);
    process.exit(1);
  });
