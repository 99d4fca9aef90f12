import type { Device, DeviceSummary } from '../../domain/types';
import { decodeCursor, encodeCursor } from '../cursor';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../errors';
import type { DeviceFilter, DevicePatch, DeviceStore, Page, PageRequest } from '../types';
import { guarded, LuaScript, type RedisClient } from './client';
import { padded, type RedisKeys } from './keys';
import { DEVICE_CREATE, DEVICE_UPDATE, DEVICE_UPSERT_MANY } from './scripts';

const create = new LuaScript(DEVICE_CREATE);
const updateScript = new LuaScript(DEVICE_UPDATE);
const upsertMany = new LuaScript(DEVICE_UPSERT_MANY);

/** Devices are scanned in creation order in chunks of this size when a filter has to be applied client-side. */
const SCAN_CHUNK = 500;
/** Bounded optimistic retries for updates without an expected version; contention on one device is rare. */
const MAX_RETRIES = 16;

const orderMember = (d: Pick<Device, 'createdAt' | 'id'>): string => `${padded(d.createdAt)}:${d.id}`;

function matches(d: Device, f: DeviceFilter): boolean {
  if (f.status !== undefined && d.status !== f.status) return false;
  if (f.platform !== undefined && d.platform !== f.platform) return false;
  if (f.owner !== undefined && d.owner !== f.owner) return false;
  if (f.department !== undefined && d.department !== f.department) return false;
  if (f.search !== undefined && f.search !== '') {
    const s = f.search.toLowerCase();
    const hay = [d.serialNumber, d.assetTag ?? '', d.model ?? '', d.owner ?? ''];
    if (!hay.some((v) => v.toLowerCase().includes(s))) return false;
  }
  return true;
}

const isFiltered = (f: DeviceFilter): boolean =>
  f.status !== undefined ||
  f.platform !== undefined ||
  f.owner !== undefined ||
  f.department !== undefined ||
  (f.search !== undefined && f.search !== '');

function status(result: unknown, what: string): void {
  if (result === 'OK') return;
  if (result === 'EXISTS') throw new AlreadyExistsError(what);
  if (result === 'NOTFOUND') throw new NotFoundError(what);
  if (result === 'CONFLICT') throw new ConflictError(what);
  throw new Error(`unexpected script result ${String(result)}`);
}

export class RedisDeviceStore implements DeviceStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  private scriptKeys(id: string): string[] {
    return [this.keys.device(id), this.keys.deviceSerials(), this.keys.deviceEks(), this.keys.deviceOrder()];
  }

  create(device: Device): Promise<void> {
    return guarded(async () => {
      const r = await create.run(this.redis, this.scriptKeys(device.id), [
        device.id,
        JSON.stringify(device),
        device.serialNumber,
        device.tpm?.ekPublicSha256 ?? '',
        orderMember(device),
      ]);
      status(r, `device ${device.id} / serial ${device.serialNumber}`);
    });
  }

  private async read(id: string): Promise<Device | null> {
    const json = await this.redis.get(this.keys.device(id));
    return json ? (JSON.parse(json) as Device) : null;
  }

  get(id: string): Promise<Device> {
    return guarded(async () => {
      const d = await this.read(id);
      if (!d) throw new NotFoundError(`device ${id}`);
      return d;
    });
  }

  getSummary(id: string): Promise<DeviceSummary | null> {
    return guarded(async () => {
      const d = await this.read(id);
      return d ? { id: d.id, status: d.status, platform: d.platform, owner: d.owner, department: d.department } : null;
    });
  }

  findBySerial(serialNumber: string): Promise<Device | null> {
    return guarded(async () => {
      const id = await this.redis.hget(this.keys.deviceSerials(), serialNumber);
      return id ? this.read(id) : null;
    });
  }

  findByEkHash(ekPublicSha256: string): Promise<Device | null> {
    return guarded(async () => {
      const id = await this.redis.hget(this.keys.deviceEks(), ekPublicSha256);
      return id ? this.read(id) : null;
    });
  }

  update(id: string, patch: DevicePatch, expectedVersion?: number): Promise<Device> {
    return guarded(async () => {
      for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
        const current = await this.read(id);
        if (!current) throw new NotFoundError(`device ${id}`);
        if (expectedVersion !== undefined && current.version !== expectedVersion) {
          throw new ConflictError(`device ${id}`);
        }
        const next: Device = { ...current, ...patch, id, createdAt: current.createdAt, version: current.version + 1 };
        const r = await updateScript.run(this.redis, this.scriptKeys(id).slice(0, 3), [
          id,
          current.version,
          JSON.stringify(next),
          current.serialNumber,
          next.serialNumber,
          current.tpm?.ekPublicSha256 ?? '',
          next.tpm?.ekPublicSha256 ?? '',
        ]);
        if (r === 'CONFLICT' && expectedVersion === undefined) continue;
        status(r, `device ${id} (serial number or EK)`);
        return next;
      }
      throw new ConflictError(`device ${id}`);
    });
  }

  list(filter: DeviceFilter, page: PageRequest): Promise<Page<Device>> {
    return guarded(async () => {
      let start = '-';
      if (page.cursor) {
        const [createdAt, id] = decodeCursor(page.cursor, ['number', 'string']);
        start = `(${padded(createdAt as number)}:${id as string}`;
      }
      const items: Device[] = [];
      const chunk = isFiltered(filter) ? SCAN_CHUNK : page.limit + 1;
      for (;;) {
        const members = await this.redis.zrangebylex(this.keys.deviceOrder(), start, '+', 'LIMIT', 0, chunk);
        if (members.length === 0) break;
        const ids = members.map((m) => m.slice(m.indexOf(':') + 1));
        const jsons = await this.redis.mget(...ids.map((i) => this.keys.device(i)));
        for (const json of jsons) {
          if (!json) continue;
          const d = JSON.parse(json) as Device;
          if (matches(d, filter)) items.push(d);
          if (items.length > page.limit) break;
        }
        if (items.length > page.limit || members.length < chunk) break;
        start = `(${members[members.length - 1] as string}`;
      }
      const more = items.length > page.limit;
      const kept = items.slice(0, page.limit);
      const last = kept[kept.length - 1];
      return { items: kept, nextCursor: more && last ? encodeCursor([last.createdAt, last.id]) : null };
    });
  }

  count(filter: DeviceFilter = {}): Promise<number> {
    return guarded(async () => {
      if (!isFiltered(filter)) return this.redis.zcard(this.keys.deviceOrder());
      let n = 0;
      let cursor: string | null = null;
      do {
        const page: Page<Device> = await this.list(filter, { cursor, limit: 1000 });
        n += page.items.length;
        cursor = page.nextCursor;
      } while (cursor);
      return n;
    });
  }

  upsertManyBySerial(devices: readonly Device[]): Promise<{ created: number; updated: number }> {
    return guarded(async () => {
      for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
        const existingIds = devices.length
          ? await this.redis.hmget(this.keys.deviceSerials(), ...devices.map((d) => d.serialNumber))
          : [];
        const args: (string | number)[] = [this.keys.devicePrefix()];
        let created = 0;
        let updated = 0;
        for (const [i, d] of devices.entries()) {
          const existingId = existingIds[i];
          const current = existingId ? await this.read(existingId) : null;
          if (current) {
            updated++;
            const next: Device = {
              ...current,
              assetTag: d.assetTag,
              model: d.model,
              platform: d.platform,
              owner: d.owner,
              department: d.department,
              tpm: d.tpm
                ? { ekPublicSha256: d.tpm.ekPublicSha256, ekCertificatePem: d.tpm.ekCertificatePem ?? current.tpm?.ekCertificatePem }
                : null,
              updatedAt: d.updatedAt,
              version: current.version + 1,
            };
            args.push(current.id, JSON.stringify(next), d.serialNumber, next.tpm?.ekPublicSha256 ?? '', current.id, current.version, current.tpm?.ekPublicSha256 ?? '', orderMember(current));
          } else {
            created++;
            args.push(d.id, JSON.stringify(d), d.serialNumber, d.tpm?.ekPublicSha256 ?? '', '', 0, '', orderMember(d));
          }
        }
        const r = await upsertMany.run(
          this.redis,
          [this.keys.deviceSerials(), this.keys.deviceEks(), this.keys.deviceOrder()],
          args,
        );
        if (r === 'CONFLICT') continue;
        status(r, 'device import (id, serial or EK hash already used by another device)');
        return { created, updated };
      }
      throw new ConflictError('device import');
    });
  }
}
