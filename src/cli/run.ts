import { openContext, reportError, type CliContext, type GlobalOptions } from './context';

export type RunWithContext = (opts: GlobalOptions, body: (ctx: CliContext) => Promise<void>) => Promise<void>;

/** Opens the context, runs the body, closes, and sets the exit code; every subcommand goes through here. */
export const runWithContext: RunWithContext = async (opts, body) => {
  let ctx: CliContext | null = null;
  try {
    ctx = await openContext(opts);
    await body(ctx);
  } catch (e) {
    process.exitCode = reportError(e, Boolean(opts.json));
  } finally {
    await ctx?.close().catch(() => undefined);
  }
};
