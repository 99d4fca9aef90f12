import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AppError } from '../../domain/errors';
import { cliPrincipal } from '../../services/actors';
import { deviceToApi, type ImportReport } from '../../services/registry';
import { output, type GlobalOptions } from '../context';
import type { RunWithContext } from '../run';

function renderReport(r: ImportReport): string {
  const lines = r.report
    .filter((row) => row.action === 'rejected')
    .map((row) => `  line ${row.line}${row.serial_number ? ` (${row.serial_number})` : ''}: ${row.reasons.join('; ')}`);
  const head = r.dry_run
    ? `Dry run: ${r.rows} rows; would create ${r.created}, update ${r.updated}; ${r.rejected} rejected. Nothing was written.`
    : r.applied
      ? `Imported ${r.rows} rows: ${r.created} created, ${r.updated} updated.`
      : `${r.rejected} of ${r.rows} rows rejected; nothing was written.`;
  return [head, ...(lines.length ? ['Rejected rows:', ...lines] : [])].join('\n');
}

export function registerDeviceCommands(program: Command, run: RunWithContext): void {
  const devices = program.command('devices').description('the device inventory');

  devices
    .command('import')
    .description('import devices from a CSV file (idempotent upsert by serial number; all rows or none)')
    .argument('<file>', 'CSV with a header: serial_number, platform, asset_tag, model, owner, department, ek_public_sha256')
    .option('--dry-run', 'validate and report without writing anything')
    .action((file: string, opts: { dryRun?: boolean }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const csv = readFileSync(file, 'utf8');
        if (!ctx.json) process.stderr.write(`Reading ${file} (${csv.length} bytes)...\n`);
        try {
          const report = await ctx.services.registry.importCsv(csv, { dryRun: Boolean(opts.dryRun) }, cliPrincipal());
          output(ctx.json, report, () => renderReport(report));
        } catch (e) {
          if (e instanceof AppError && e.code === 'IMPORT_REJECTED' && e.details) {
            output(ctx.json, e.details, () => renderReport(e.details as unknown as ImportReport));
            process.exitCode = 4;
            return;
          }
          throw e;
        }
      }),
    );

  devices
    .command('list')
    .description('list devices')
    .option('--status <status>', 'only devices with this status')
    .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 100)
    .action((opts: { status?: string; limit: number }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const page = await ctx.services.registry.list({ status: opts.status as never }, { limit: opts.limit });
        output(ctx.json, page.items.map(deviceToApi), () =>
          page.items.length === 0
            ? 'No devices.'
            : page.items.map((d) => `${d.id}  ${d.status.padEnd(10)} ${d.platform.padEnd(8)} ${d.serialNumber}  ${d.owner ?? ''}`).join('\n'),
        );
      }),
    );

  devices
    .command('token')
    .description('create a one-time enrollment token for a device (printed once)')
    .argument('<device-id>', 'device id')
    .option('--ttl <seconds>', 'lifetime in seconds (default enrollment.tokenTtlSeconds)', (v) => Number.parseInt(v, 10))
    .action((deviceId: string, opts: { ttl?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const t = await ctx.services.registry.createEnrollmentToken(deviceId, { ttlSeconds: opts.ttl }, cliPrincipal());
        output(ctx.json, { token: t.token, device_id: t.deviceId, expires_at: new Date(t.expiresAt).toISOString() }, () =>
          [
            `Enrollment token for ${t.deviceId} (valid until ${new Date(t.expiresAt).toISOString()}, usable once):`,
            '',
            `  ${t.token}`,
            '',
            `On the device: devicegate-agent enroll --server ${ctx.config.publicUrl} --device-id ${t.deviceId} --token ${t.token}`,
          ].join('\n'),
        );
      }),
    );

  devices
    .command('status')
    .description('change a device status: suspended, active (resume), revoked, retired')
    .argument('<device-id>', 'device id')
    .argument('<status>', 'new status')
    .option('--reason <text>', 'why (kept with the device and in the audit log)')
    .action((deviceId: string, status: string, opts: { reason?: string }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const d = await ctx.services.registry.changeStatus(deviceId, { status, reason: opts.reason }, cliPrincipal());
        output(ctx.json, deviceToApi(d), () => `Device ${d.id} is now ${d.status}.`);
      }),
    );
}
