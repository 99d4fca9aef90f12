/**
 * Real OpenVPN 2.6 connect time with and without the devicegate management-interface adapter (issue 5 target:
 * ≤ 1.05× the connect without the adapter).
 *
 * Two OpenVPN servers on 127.0.0.1 with the same PKI and settings: A authenticates by certificate only; B adds
 * `--management-client-auth` answered by the in-process `OpenVpnManagementAuthorizer`, which asks the real
 * devicegate app (SQLite store, dev CA, audit log; `POST /v1/decisions`) for every CONNECT. Clients (`--dev null`) alternate between A and B; each run is timed from
 * process spawn to `Initialization Sequence Completed` in the client log. Prints the medians, p90s and the ratio,
 * the adapter's own share of the time, and for comparison the synchronous alternatives: the Node `--tls-verify` hook
 * answering from its local decision cache, the POSIX-sh hook and the C plugin (docker/openvpn/plugin), each asking
 * devicegate and answering from its cache.
 *
 * Needs root and /dev/net/tun (server side). Run: `node -r ./scripts/ts-register.js bench/openvpn-connect.ts [runs]`
 * or, once registered in bench/run.js, `npm run bench -- openvpn-connect --runs 20`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayClient } from '../src/adapters/gateway-client';
import { silentLogger } from '../src/adapters/log';
import { type DecisionEvent, OpenVpnManagementAuthorizer } from '../src/adapters/openvpn/management-daemon';
import { startLiveGateway } from '../test/e2e/support/devicegate';
import { writeCachedDecision } from '../src/adapters/openvpn/decision-cache';
import { buildAdapterLauncher, buildOpenVpnPlugin, connectOpenVpnClient, nodeModulesDir, openvpnVersion, startOpenVpnServer } from '../test/helpers/openvpn';
import { createTestPki } from '../test/helpers/test-pki';

/** Options of the benchmark. */
export interface OpenVpnConnectBenchOptions {
  /** Connects per variant (default 15). */
  readonly runs?: number;
  /** Gateway deadline of the adapter (default 2000 ms). */
  readonly deadlineMs?: number;
}

/** Measured figures (milliseconds). */
export interface OpenVpnConnectBenchResult {
  readonly openvpnVersion: string | null;
  readonly runs: number;
  readonly withoutAdapter: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  readonly withAdapter: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  /** Synchronous alternative: `--tls-verify` hook answering from the local decision cache (no deferred auth). */
  readonly withCachedTlsVerifyHook: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  /** The shipped POSIX-sh tls-verify hook (docker/openvpn/devicegate-tls-verify.sh) asking devicegate every time. */
  readonly withShHookAsking: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  /** The same hook answering from its cache. */
  readonly withShHookCached: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  /** The C plugin (docker/openvpn/plugin) asking devicegate every time, inside the OpenVPN process. */
  readonly withPluginAsking: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  /** The C plugin answering from its cache. */
  readonly withPluginCached: { readonly medianMs: number; readonly p90Ms: number; readonly samples: number[] };
  /** median(with) / median(without). */
  readonly ratio: number;
  /** The adapter's own share: `>CLIENT:CONNECT` received → OpenVPN acknowledged our `client-auth-nt` (ms). */
  readonly adapterDecision: { readonly medianMs: number; readonly p90Ms: number };
}

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Runs the benchmark and prints the figures. */
export async function runOpenVpnConnectBench(opts: OpenVpnConnectBenchOptions = {}): Promise<OpenVpnConnectBenchResult> {
  const runs = opts.runs ?? 15;
  const work = mkdtempSync(path.join(os.tmpdir(), 'dg-bench-ovpn-'));
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // The OpenVPN server's own certificate comes from a test PKI; device certificates from devicegate's CA.
    const pki = createTestPki(path.join(work, 'pki'));
    const gw = await startLiveGateway(path.join(work, 'gateway'));
    cleanups.push(() => gw.close());
    const endpoint = { url: gw.url };
    const token = gw.concentratorToken;
    const cert = await gw.enrollDevice('bench');
    const serverCa = path.join(work, 'server-ca.pem');
    writeFileSync(serverCa, gw.chainPem);
    const common = { caFile: serverCa, certFile: pki.server.certPath, keyFile: pki.server.keyPath };
    const plain = await startOpenVpnServer({ ...common, workDir: path.join(work, 'plain'), auth: { kind: 'none' } });
    cleanups.push(() => plain.stop());
    const socketPath = path.join(work, 'mgmt.sock');
    const managed = await startOpenVpnServer({ ...common, workDir: path.join(work, 'managed'), auth: { kind: 'management', socketPath } });
    cleanups.push(() => managed.stop());
    const daemon = new OpenVpnManagementAuthorizer({
      endpoint: { path: socketPath },
      gateway: new GatewayClient({ url: endpoint.url, token, deadlineMs: opts.deadlineMs ?? 2000 }),
      token,
      gatewayId: 'bench',
      log: silentLogger,
      revocationFeed: false,
    });
    const decisionMs: number[] = [];
    daemon.on('decision', (e: DecisionEvent) => decisionMs.push(e.elapsedMs));
    daemon.start();
    cleanups.push(() => daemon.stop());
    for (let i = 0; i < 200 && !daemon.connected; i++) await new Promise((r) => setTimeout(r, 25));

    // Variant C: the script hook at tls-verify, answered from a pre-filled cache (what the hook does for a device
    // decided within the cache ttl); synchronous, so OpenVPN applies it without the deferred-auth timer.
    const launcher = buildAdapterLauncher(path.join(work, 'build'));
    const tokenFile = path.join(work, 'token');
    writeFileSync(tokenFile, token);
    const cachePath = path.join(work, 'cache.json');
    writeCachedDecision(cachePath, cert.sha256, { decision: 'allow', reason_code: 'OK', decision_id: 'bench', expires_at_ms: Date.now() + 3_600_000 }, Date.now());
    const hookOpts = path.join(work, 'hook.conf');
    writeFileSync(hookOpts, `gateway ${endpoint.url}\ntoken-file ${tokenFile}\ncache ${cachePath}\n`);
    const hooked = await startOpenVpnServer({
      ...common,
      workDir: path.join(work, 'hooked'),
      auth: { kind: 'hook', command: `${process.execPath} ${launcher} hook --config ${hookOpts}`, hooks: ['tls-verify'], env: { NODE_PATH: nodeModulesDir() } },
    });
    cleanups.push(() => hooked.stop());

    // Variant D: the POSIX-sh tls-verify hook (synchronous, so no deferred-auth tick), asking devicegate.
    const shCache = path.join(work, 'sh-cache');
    mkdirSync(shCache);
    const shServer = await startOpenVpnServer({
      ...common,
      workDir: path.join(work, 'sh-hooked'),
      auth: {
        kind: 'hook',
        command: path.resolve(__dirname, '..', 'docker', 'openvpn', 'devicegate-tls-verify.sh'),
        hooks: ['tls-verify'],
        env: { DEVICEGATE_URL: endpoint.url, DEVICEGATE_TOKEN_FILE: tokenFile, DEVICEGATE_GATEWAY_ID: 'bench-sh', DEVICEGATE_CACHE_DIR: shCache },
      },
    });
    cleanups.push(() => shServer.stop());

    // Variant E: the C plugin, synchronous inside OpenVPN (no process start, no deferred-auth tick).
    const pluginPath = path.join(work, 'devicegate-openvpn-plugin.so');
    buildOpenVpnPlugin(pluginPath);
    const pluginCache = path.join(work, 'plugin-cache');
    mkdirSync(pluginCache);
    const pluginServer = await startOpenVpnServer({
      ...common,
      workDir: path.join(work, 'plugin'),
      auth: { kind: 'plugin', path: pluginPath, args: [`url=${endpoint.url}`, `token_file=${tokenFile}`, 'gateway_id=bench-plugin', `cache_dir=${pluginCache}`] },
    });
    cleanups.push(() => pluginServer.stop());

    const connect = async (port: number, name: string): Promise<number> => {
      const { result } = await connectOpenVpnClient({
        workDir: path.join(work, 'clients'),
        name,
        port,
        caFile: pki.caCertPath,
        certFile: cert.certPath,
        keyFile: cert.keyPath,
        pollMs: 2,
      });
      if (result.outcome !== 'connected') throw new Error(`${name}: ${result.outcome}\n${result.log.slice(-1500)}`);
      return result.elapsedMs;
    };
    // Warm-up (first TLS handshake, first HTTP connection), not counted.
    await connect(plain.port, 'warm-plain');
    await connect(managed.port, 'warm-managed');
    await connect(hooked.port, 'warm-hooked');
    await connect(shServer.port, 'warm-sh');
    await connect(pluginServer.port, 'warm-plugin');
    const without: number[] = [];
    const withAdapter: number[] = [];
    const withHook: number[] = [];
    const withShAsking: number[] = [];
    const withShCached: number[] = [];
    const withPluginAsking: number[] = [];
    const withPluginCached: number[] = [];
    decisionMs.length = 0;
    for (let i = 0; i < runs; i++) {
      // Alternate the order so drift (CPU frequency, page cache) hits both variants alike.
      if (i % 2 === 0) {
        without.push(await connect(plain.port, `plain-${i}`));
        withAdapter.push(await connect(managed.port, `managed-${i}`));
      } else {
        withAdapter.push(await connect(managed.port, `managed-${i}`));
        without.push(await connect(plain.port, `plain-${i}`));
      }
      withHook.push(await connect(hooked.port, `hooked-${i}`));
      rmSync(shCache, { recursive: true, force: true });
      mkdirSync(shCache);
      withShAsking.push(await connect(shServer.port, `sh-ask-${i}`));
      withShCached.push(await connect(shServer.port, `sh-cached-${i}`));
      rmSync(pluginCache, { recursive: true, force: true });
      mkdirSync(pluginCache);
      withPluginAsking.push(await connect(pluginServer.port, `plugin-ask-${i}`));
      withPluginCached.push(await connect(pluginServer.port, `plugin-cached-${i}`));
    }
    const result: OpenVpnConnectBenchResult = {
      openvpnVersion: openvpnVersion(),
      runs,
      withoutAdapter: { medianMs: quantile(without, 0.5), p90Ms: quantile(without, 0.9), samples: without },
      withAdapter: { medianMs: quantile(withAdapter, 0.5), p90Ms: quantile(withAdapter, 0.9), samples: withAdapter },
      withCachedTlsVerifyHook: { medianMs: quantile(withHook, 0.5), p90Ms: quantile(withHook, 0.9), samples: withHook },
      withShHookAsking: { medianMs: quantile(withShAsking, 0.5), p90Ms: quantile(withShAsking, 0.9), samples: withShAsking },
      withShHookCached: { medianMs: quantile(withShCached, 0.5), p90Ms: quantile(withShCached, 0.9), samples: withShCached },
      withPluginAsking: { medianMs: quantile(withPluginAsking, 0.5), p90Ms: quantile(withPluginAsking, 0.9), samples: withPluginAsking },
      withPluginCached: { medianMs: quantile(withPluginCached, 0.5), p90Ms: quantile(withPluginCached, 0.9), samples: withPluginCached },
      ratio: quantile(withAdapter, 0.5) / quantile(without, 0.5),
      adapterDecision: { medianMs: Number(quantile(decisionMs, 0.5).toFixed(2)), p90Ms: Number(quantile(decisionMs, 0.9).toFixed(2)) },
    };
    const line = (name: string, r: { medianMs: number; p90Ms: number }): string =>
      `  ${name.padEnd(44)} median ${String(r.medianMs).padStart(5)} ms   p90 ${String(r.p90Ms).padStart(5)} ms`;
    process.stdout.write(
      [
        `OpenVPN ${result.openvpnVersion ?? '?'} connect time, ${runs} runs per variant (spawn → Initialization Sequence Completed)`,
        line('baseline: certificate only (no adapter)', result.withoutAdapter),
        line('with management adapter (POST /v1/decisions)', result.withAdapter),
        `  ratio with/without: ${result.ratio.toFixed(3)}× (target ≤ 1.05×)`,
        `  of which the adapter (CONNECT notification → client-auth acknowledged): median ${result.adapterDecision.medianMs} ms, p90 ${result.adapterDecision.p90Ms} ms;`,
        '  the rest is OpenVPN applying a deferred (management/plugin/script) auth result on its next 1 s timer tick.',
        line('alternative: tls-verify hook from local cache', result.withCachedTlsVerifyHook),
        `  ratio hook/without: ${(result.withCachedTlsVerifyHook.medianMs / result.withoutAdapter.medianMs).toFixed(3)}× (two Node process starts per connect: depth 1 and 0)`,
        line('sh tls-verify hook, asking devicegate', result.withShHookAsking),
        `  ratio sh-asking/without: ${(result.withShHookAsking.medianMs / result.withoutAdapter.medianMs).toFixed(3)}×`,
        line('sh tls-verify hook, cached allow', result.withShHookCached),
        `  ratio sh-cached/without: ${(result.withShHookCached.medianMs / result.withoutAdapter.medianMs).toFixed(3)}×`,
        line('C plugin, asking devicegate', result.withPluginAsking),
        `  ratio plugin-asking/without: ${(result.withPluginAsking.medianMs / result.withoutAdapter.medianMs).toFixed(3)}× (target ≤ 1.05×)`,
        line('C plugin, cached allow', result.withPluginCached),
        `  ratio plugin-cached/without: ${(result.withPluginCached.medianMs / result.withoutAdapter.medianMs).toFixed(3)}× (target ≤ 1.05×)`,
        '',
      ].join('\n'),
    );
    return result;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const runs = Number(process.argv[2] ?? 15);
  runOpenVpnConnectBench({ runs }).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
