// Clears the skip records of the previous run so the skip reporter only lists this run's skips.
const fs = require('node:fs');
const path = require('node:path');

module.exports = async function globalSetup() {
  fs.rmSync(path.join(__dirname, '..', '.jest-skips'), { recursive: true, force: true });
};
