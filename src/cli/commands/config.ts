import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { renderConfigReference } from '../../config/docs';
import { productionProblems } from '../../config/production';
import { ConfigError } from '../../config/load';
import { devCertificateProblems } from '../../services/production-checks';
import { EXIT, loadCliConfig, output, reportError, type GlobalOptions } from '../context';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('inspect and document the configuration');

  config
    .command('check')
    .description('load and validate the configuration as the server would, and list every problem')
    .action((_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      try {
        const c = loadCliConfig(g);
        const problems = productionProblems(c, process.env, [devCertificateProblems]);
        if (problems.length) throw new ConfigError(problems);
        output(Boolean(g.json), { ok: true, mode: c.mode, sources: c.sources }, () => `Configuration OK (${c.mode}); read ${c.sources.join(', ')}.`);
      } catch (e) {
        process.exitCode = reportError(e, Boolean(g.json));
      }
    });

  config
    .command('show')
    .description('print the resolved configuration (defaults applied; secrets are only ever file paths)')
    .action((_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      try {
        process.stdout.write(`${JSON.stringify(loadCliConfig(g), null, 2)}\n`);
      } catch (e) {
        process.exitCode = reportError(e, Boolean(g.json));
      }
    });

  config
    .command('docs')
    .description('print the configuration reference generated from the schema')
    .option('--write <file>', 'write it to a file instead (config/README.md)')
    .action((opts: { write?: string }) => {
      const text = renderConfigReference();
      if (opts.write) writeFileSync(opts.write, text);
      else process.stdout.write(text);
      process.exitCode = EXIT.ok;
    });
}
