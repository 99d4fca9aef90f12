// Prints, after every run, which suites were skipped because a real component was missing, and how to install it.
// Under CI=true such suites fail instead of skipping (see test/helpers/requirements.ts); this reporter is the
// loud notice for local runs.
const fs = require('node:fs');
const path = require('node:path');

class SkipReporter {
  onRunComplete() {
    const dir = path.join(__dirname, '..', '..', '.jest-skips');
    if (!fs.existsSync(dir)) return;
    const records = new Map();
    for (const f of fs.readdirSync(dir)) {
      for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const r = JSON.parse(line);
        records.set(`${r.suite}\u0000${r.missing}`, r);
      }
    }
    if (records.size === 0) return;
    const out = ['', `SKIPPED SUITES (${records.size}) - these did not run:`];
    for (const r of records.values()) out.push(`  - ${r.suite}: missing ${r.missing}${r.hint ? ` (${r.hint})` : ''}`);
    out.push('Under CI=true these suites fail instead of skipping.', '');
    process.stderr.write(out.join('\n') + '\n');
  }
}
module.exports = SkipReporter;
