import type { Command } from 'commander';
import { ROLES } from '../../domain/types';
import { cliPrincipal } from '../../services/actors';
import { output, type GlobalOptions } from '../context';
import type { RunWithContext } from '../run';

export function registerTokenCommands(program: Command, run: RunWithContext): void {
  const tokens = program.command('tokens').description('API tokens for automation and concentrators (stored hashed)');

  tokens
    .command('create')
    .description('create an API token; the token is printed once and cannot be shown again')
    .requiredOption('--role <role>', `role of the token: ${ROLES.join(', ')}`)
    .requiredOption('--name <name>', 'unique name, e.g. the concentrator host')
    .option('--ttl-days <days>', 'expire after this many days (default: never)', (v) => Number.parseInt(v, 10))
    .action((opts: { role: string; name: string; ttlDays?: number }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const created = await ctx.services.apiTokens.create({ name: opts.name, role: opts.role, ttlDays: opts.ttlDays }, cliPrincipal());
        output(
          ctx.json,
          { id: created.record.id, name: created.record.name, role: created.record.role, token: created.token, expires_at: created.record.expiresAt === null ? null : new Date(created.record.expiresAt).toISOString() },
          () =>
            [
              `Created API token "${created.record.name}" (role ${created.record.role}, id ${created.record.id}).`,
              'Store it now; it is not shown again:',
              '',
              `  ${created.token}`,
              '',
              'Use it as: Authorization: Bearer <token>',
            ].join('\n'),
        );
      }),
    );

  tokens
    .command('list')
    .description('list API tokens (never their secrets)')
    .action((_opts: unknown, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const list = await ctx.services.apiTokens.list();
        const rows = list.map((t) => ({
          id: t.id,
          name: t.name,
          role: t.role,
          created_at: new Date(t.createdAt).toISOString(),
          expires_at: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
          revoked_at: t.revokedAt === null ? null : new Date(t.revokedAt).toISOString(),
        }));
        output(ctx.json, rows, () =>
          rows.length === 0
            ? 'No API tokens.'
            : rows.map((r) => `${r.id}  ${r.role.padEnd(12)} ${r.name}${r.revoked_at ? `  (revoked ${r.revoked_at})` : ''}`).join('\n'),
        );
      }),
    );

  tokens
    .command('revoke')
    .description('revoke an API token by id (takes effect within seconds on running gateways)')
    .argument('<id>', 'token id from `devicegate tokens list`')
    .action((id: string, _opts: unknown, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        await ctx.services.apiTokens.revoke(id, cliPrincipal());
        output(ctx.json, { id, revoked: true }, () => `Revoked API token ${id}.`);
      }),
    );
}
