/**
 * A private, real `redis-server` per test file: random loopback port, its own temp directory, AOF on (as production
 * should run it), stopped and removed afterwards. No Redis mock exists in this project.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports';
import { tool } from './requirements';

export const redisServer = tool('redis-server', 'apt-get install -y redis-server');

export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILL-free restart on the same port and data directory (for outage tests). */
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startRedisServer(options: { appendonly?: boolean } = {}): Promise<RedisServerHandle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      [
        '--bind', '127.0.0.1',
        '--port', String(port),
        '--dir', dir,
        '--save', '',
        '--appendonly', options.appendonly === false ? 'no' : 'yes',
        '--appendfsync', 'everysec',
        '--daemonize', 'no',
        '--logfile', path.join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port, 10_000);
  };

  const stop = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop,
    start,
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
