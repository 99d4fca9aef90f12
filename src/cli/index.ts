/**
 * `devicegate`: the one command-line entry point (package.json `bin`). Every subcommand has `--help`; `--json`
 * prints machine-readable output for scripts. It reads the same configuration and `DEVICEGATE_DATA_DIR` as the
 * server, so admin commands work against a running dev gateway.
 */
import 'reflect-metadata';
import { Command } from 'commander';
import { registerAuditCommands } from './commands/audit';
import { registerCaCommands } from './commands/ca';
import { registerConfigCommands } from './commands/config';
import { registerDeviceCommands } from './commands/devices';
import { registerTokenCommands } from './commands/tokens';
import { runWithContext } from './run';

export function buildProgram(): Command {
  const program = new Command('devicegate')
    .description('devicegate: VPN access gateway for attested, managed devices')
    .option('--json', 'machine-readable JSON output')
    .option('-c, --config <file>', 'extra YAML config file (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true });
  registerTokenCommands(program, runWithContext);
  registerDeviceCommands(program, runWithContext);
  registerCaCommands(program, runWithContext);
  registerAuditCommands(program, runWithContext);
  registerConfigCommands(program);
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      process.stderr.write(`devicegate: ${(e as Error).message}\n`);
      process.exitCode = 2;
    });
}
