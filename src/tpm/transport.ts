import { open, type FileHandle } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { AppError, badRequest, unavailable } from '../domain/errors';

/**
 * Moves raw TPM 2.0 command bytes to a TPM and returns the raw response. Commands are serialised: a TPM without a
 * resource manager (swtpm) serves one command at a time.
 */
export interface TpmTransport {
  /** Sends one complete command and resolves with one complete response. */
  send(command: Buffer): Promise<Buffer>;
  /** Releases the connection or file; idempotent. */
  close(): Promise<void>;
  /** Human-readable target, e.g. `swtpm:host=127.0.0.1,port=2321`. */
  readonly description: string;
}

/** A parsed TCTI-like setting. */
export type TctiConfig =
  | { readonly kind: 'swtpm'; readonly host: string; readonly port: number }
  | { readonly kind: 'device'; readonly path: string };

/**
 * Parses the agent's `--tcti` value, modelled on tpm2-tss TCTI strings:
 * `swtpm:host=127.0.0.1,port=2321` (swtpm's raw TCP data port), `device:/dev/tpmrm0`, or a bare device path.
 * Throws `TCTI_INVALID` (bad_request) for anything else.
 */
export function parseTcti(value: string): TctiConfig {
  const v = value.trim();
  if (v.startsWith('swtpm')) {
    const rest = v.slice('swtpm'.length).replace(/^:/, '');
    let host = '127.0.0.1';
    let port = 2321;
    for (const part of rest.split(',').filter((p) => p !== '')) {
      const [k, val] = part.split('=', 2);
      if (k === 'host' && val) host = val;
      else if (k === 'port' && val && /^\d{1,5}$/.test(val) && Number(val) > 0 && Number(val) < 65536) port = Number(val);
      else throw badRequest('TCTI_INVALID', `Unknown or invalid swtpm TCTI option "${part}"`);
    }
    return { kind: 'swtpm', host, port };
  }
  if (v.startsWith('device:')) return { kind: 'device', path: v.slice('device:'.length) || '/dev/tpmrm0' };
  if (v.startsWith('/dev/')) return { kind: 'device', path: v };
  throw badRequest('TCTI_INVALID', 'TCTI must be swtpm:host=H,port=N or device:/dev/tpmrm0');
}

/** Opens the transport for a TCTI setting. */
export function openTransport(tcti: TctiConfig, timeoutMs = 30_000): TpmTransport {
  return tcti.kind === 'swtpm' ? new SwtpmTcpTransport(tcti.host, tcti.port, timeoutMs) : new DeviceTransport(tcti.path);
}

const HEADER = 10;
/** Larger than any response of the commands used (TPM_PT_MAX_RESPONSE_SIZE is 4096 on common TPMs). */
const MAX_RESPONSE = 64 * 1024;

/**
 * swtpm's TCP data port (`swtpm socket --server type=tcp`) speaks raw TPM command bytes without mssim framing.
 * One persistent connection is kept: swtpm has a listen backlog of one and serves one client at a time, so other
 * clients (tpm2-tools) must wait until `close()`.
 */
export class SwtpmTcpTransport implements TpmTransport {
  private socket: Socket | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  readonly description: string;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs: number,
  ) {
    this.description = `swtpm:host=${host},port=${port}`;
  }

  send(command: Buffer): Promise<Buffer> {
    const run = this.queue.then(() => this.exchange(command));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async connected(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    this.socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      s.once('connect', () => {
        s.removeAllListeners('error');
        s.on('error', () => s.destroy());
        resolve(s);
      });
      s.once('error', (e) => reject(unavailable('TPM_UNAVAILABLE', `Cannot connect to ${this.description}`, { cause: e })));
    });
    return this.socket;
  }

  private async exchange(command: Buffer): Promise<Buffer> {
    const s = await this.connected();
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let have = 0;
      const cleanup = (): void => {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onClose);
      };
      const onData = (d: Buffer): void => {
        chunks.push(d);
        have += d.length;
        if (have < HEADER) return;
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const size = all.readUInt32BE(2);
        if (size < HEADER || size > MAX_RESPONSE) {
          cleanup();
          s.destroy();
          reject(unavailable('TPM_PROTOCOL_ERROR', `Invalid response size from ${this.description}`));
          return;
        }
        if (have >= size) {
          cleanup();
          resolve(Buffer.from(all.subarray(0, size)));
        }
      };
      const onClose = (): void => {
        cleanup();
        reject(unavailable('TPM_UNAVAILABLE', `${this.description} closed the connection`));
      };
      const timer = setTimeout(() => {
        cleanup();
        s.destroy();
        reject(unavailable('TPM_TIMEOUT', `No response from ${this.description} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      s.on('data', onData);
      s.on('close', onClose);
      s.write(command);
    });
  }

  async close(): Promise<void> {
    await this.queue;
    const s = this.socket;
    this.socket = null;
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 1000).unref();
      });
    }
  }
}

/**
 * A TPM character device: `/dev/tpmrm0` (kernel resource manager, preferred: it flushes objects of a crashed
 * process and lets several programs share the TPM) or `/dev/tpm0`. The kernel returns one whole response per read.
 */
export class DeviceTransport implements TpmTransport {
  private handle: FileHandle | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  readonly description: string;

  constructor(private readonly path: string) {
    this.description = `device:${path}`;
  }

  send(command: Buffer): Promise<Buffer> {
    const run = this.queue.then(async () => {
      try {
        this.handle ??= await open(this.path, 'r+');
        await this.handle.write(command, 0, command.length);
        const buf = Buffer.alloc(MAX_RESPONSE);
        const { bytesRead } = await this.handle.read(buf, 0, buf.length, null);
        if (bytesRead < HEADER) throw unavailable('TPM_PROTOCOL_ERROR', `Short response from ${this.description}`);
        return buf.subarray(0, bytesRead);
      } catch (e) {
        if (e instanceof AppError) throw e;
        const code = (e as NodeJS.ErrnoException).code;
        const hint = code === 'EACCES' ? ' (permission denied: add the user to the "tss" group or run as root)' : '';
        throw unavailable('TPM_UNAVAILABLE', `Cannot use ${this.description}${hint}`, { cause: e });
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    const h = this.handle;
    this.handle = null;
    await h?.close();
  }
}
