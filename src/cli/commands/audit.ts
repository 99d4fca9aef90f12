import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createProgressBar, verifyExportFile } from '../../audit/verify';
import { output, reportError, type GlobalOptions } from '../context';
import type { RunWithContext } from '../run';

export function registerAuditCommands(program: Command, run: RunWithContext): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  audit
    .command('verify')
    .description("verify an exported NDJSON file offline: hash chain, signed checkpoints and the signed trailer (an auditor's own machine needs no server)")
    .argument('<file>', 'an NDJSON export (GET /v1/audit/export?format=ndjson, or the console export button)')
    .requiredOption('--pubkey <file>', 'audit signing public key (PEM; GET /v1/audit/public-key); repeat for rotated keys', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (file: string, opts: { pubkey: string[] }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      try {
        const keys = opts.pubkey.map((k) => readFileSync(k, 'utf8'));
        const bar = createProgressBar(process.stderr);
        const r = await verifyExportFile(file, keys, (p) => bar.update(p));
        bar.done();
        if (r.ok) {
          output(Boolean(g.json), r, () =>
            `OK: ${r.checked} entries verified (seq ${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'}), ${r.checkpoints} signed checkpoint(s), trailer signature valid.`,
          );
        } else {
          output(Boolean(g.json), r, () => `BROKEN at seq ${r.brokenSeq ?? '-'} (${r.code}): ${r.message}; ${r.checked} entries were fine before it.`);
          process.exitCode = 1;
        }
      } catch (e) {
        process.exitCode = reportError(e, Boolean(g.json));
      }
    });

  audit
    .command('retention')
    .description('apply the retention policy now (deletes only whole expired prefixes, after a signed deletion record)')
    .option('--dry-run', 'only show what would be deleted')
    .action((opts: { dryRun?: boolean }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        if (opts.dryRun) {
          const plan = await ctx.services.auditRetention.plan();
          output(ctx.json, plan, () =>
            plan.throughSeq === null ? 'Nothing is due for deletion.' : `Would delete ${plan.count} entries (up to seq ${plan.throughSeq}).`,
          );
          return;
        }
        const r = await ctx.services.auditRetention.runOnce();
        if (r === null) {
          output(ctx.json, { skipped: 'another instance is running retention' }, () => 'Another instance is running retention right now.');
          return;
        }
        output(ctx.json, r, () =>
          r.deleted === 0 ? 'Nothing was due for deletion.' : `Deleted ${r.deleted} entries; signed retention record at seq ${r.recordSeq}.`,
        );
      }),
    );
}
