import type { CertificateRecord, Revocation } from '../../domain/types';
import { decodeCursor, encodeCursor } from '../cursor';
import { AlreadyExistsError } from '../errors';
import type { CertificateStore, CertificateWithRevocation, Page, PageRequest, RevocationStore } from '../types';
import { guarded, LuaScript, type RedisClient } from './client';
import type { RedisKeys } from './keys';
import { CERT_PUT, CERT_WITH_REVOCATION, REVOKE } from './scripts';

const putCert = new LuaScript(CERT_PUT);
const revokeScript = new LuaScript(REVOKE);
const certWithRevocation = new LuaScript(CERT_WITH_REVOCATION);

export class RedisCertificateStore implements CertificateStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  put(c: CertificateRecord): Promise<void> {
    return guarded(async () => {
      const r = await putCert.run(
        this.redis,
        [this.keys.certificate(c.serialHex), this.keys.certificateSha(), this.keys.certificatesOfDevice(c.deviceId)],
        [JSON.stringify(c), c.sha256, c.serialHex, c.issuedAt],
      );
      if (r === 'EXISTS') throw new AlreadyExistsError(`certificate ${c.serialHex}`);
    });
  }

  private async read(serialHex: string): Promise<CertificateRecord | null> {
    const json = await this.redis.get(this.keys.certificate(serialHex));
    return json ? (JSON.parse(json) as CertificateRecord) : null;
  }

  getBySerial(serialHex: string): Promise<CertificateRecord | null> {
    return guarded(() => this.read(serialHex));
  }

  getBySha256(sha256: string): Promise<CertificateRecord | null> {
    return guarded(async () => {
      const serial = await this.redis.hget(this.keys.certificateSha(), sha256);
      return serial ? this.read(serial) : null;
    });
  }

  getBySha256WithRevocation(sha256: string): Promise<CertificateWithRevocation | null> {
    return guarded(async () => {
      const r = (await certWithRevocation.run(
        this.redis,
        [this.keys.certificateSha()],
        [sha256, this.keys.certificate(''), this.keys.revocation('')],
      )) as [string, string] | null;
      if (!r) return null;
      return { certificate: JSON.parse(r[0]) as CertificateRecord, revocation: r[1] ? (JSON.parse(r[1]) as Revocation) : null };
    });
  }

  listByDevice(deviceId: string): Promise<CertificateRecord[]> {
    return guarded(async () => {
      const serials = await this.redis.zrevrange(this.keys.certificatesOfDevice(deviceId), 0, -1);
      if (serials.length === 0) return [];
      const jsons = await this.redis.mget(...serials.map((s) => this.keys.certificate(s)));
      return jsons.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as CertificateRecord);
    });
  }
}

export class RedisRevocationStore implements RevocationStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  revoke(r: Revocation): Promise<void> {
    return guarded(async () => {
      const res = await revokeScript.run(
        this.redis,
        [
          this.keys.revocation(r.serialHex),
          this.keys.revocationOrder(),
          this.keys.revocationSeq(),
          this.keys.revocationGeneration(),
        ],
        [JSON.stringify(r), r.serialHex],
      );
      if (res === 'EXISTS') throw new AlreadyExistsError(`revocation of ${r.serialHex}`);
    });
  }

  get(serialHex: string): Promise<Revocation | null> {
    return guarded(async () => {
      const json = await this.redis.get(this.keys.revocation(serialHex));
      return json ? (JSON.parse(json) as Revocation) : null;
    });
  }

  list(page: PageRequest): Promise<Page<Revocation>> {
    return guarded(async () => {
      const after = page.cursor ? (decodeCursor(page.cursor, ['number'])[0] as number) : 0;
      const raw = await this.redis.zrangebyscore(
        this.keys.revocationOrder(),
        `(${after}`,
        '+inf',
        'WITHSCORES',
        'LIMIT',
        0,
        page.limit + 1,
      );
      const serials: string[] = [];
      const scores: number[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        serials.push(raw[i] as string);
        scores.push(Number(raw[i + 1]));
      }
      const more = serials.length > page.limit;
      const kept = serials.slice(0, page.limit);
      const jsons = kept.length ? await this.redis.mget(...kept.map((s) => this.keys.revocation(s))) : [];
      const items = jsons.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as Revocation);
      const lastScore = scores[kept.length - 1];
      return { items, nextCursor: more && lastScore !== undefined ? encodeCursor([lastScore]) : null };
    });
  }

  count(): Promise<number> {
    return guarded(() => this.redis.zcard(this.keys.revocationOrder()));
  }

  generation(): Promise<number> {
    return guarded(async () => Number((await this.redis.get(this.keys.revocationGeneration())) ?? 0));
  }
}
