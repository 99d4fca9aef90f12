import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { runCli } from '../../helpers/cli';
import { bearer } from '../../helpers/tokens';

describe('devicegate audit (CLI)', () => {
  let t: TestApp;
  let exportFile: string;
  let pubFile: string;

  beforeAll(async () => {
    t = await buildTestApp();
    const admin = await bearer(t.services, 'it-admin');
    const auditor = await bearer(t.services, 'auditor');
    for (let i = 0; i < 5; i++) await request(t.app).post('/v1/devices').set('Authorization', admin).send({ serial_number: `CLI-A-${i}`, platform: 'linux' }).expect(201);
    await t.services.audit.log.flush();
    exportFile = path.join(t.dataDir, 'audit.ndjson');
    pubFile = path.join(t.dataDir, 'audit.pub.pem');
    writeFileSync(exportFile, (await request(t.app).get('/v1/audit/export').set('Authorization', auditor).expect(200)).text);
    writeFileSync(pubFile, (await request(t.app).get('/v1/audit/public-key').set('Authorization', auditor).expect(200)).text);
  });
  afterAll(async () => t.cleanup());

  it('verifies an export offline with only the public key', () => {
    const r = runCli(['audit', 'verify', exportFile, '--pubkey', pubFile]);
    expect(r.stdout).toMatch(/^OK: \d+ entries verified/);
    expect(r.status).toBe(0);
  });

  it('reports the first broken seq of a file whose entry was altered after export (exit 1)', () => {
    const lines = readFileSync(exportFile, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('CLI-A-2'));
    expect(i).toBeGreaterThan(0);
    lines[i] = lines[i]!.replace('CLI-A-2', 'CLI-A-9');
    const forged = path.join(t.dataDir, 'forged.ndjson');
    writeFileSync(forged, lines.join('\n'));
    const r = runCli(['audit', 'verify', forged, '--pubkey', pubFile, '--json']);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false });
    expect(JSON.parse(r.stdout).brokenSeq).toBeGreaterThan(0);
  });

  it('refuses verification with another key (replaced signatures cannot be checked against the real key)', () => {
    const other = path.join(t.dataDir, 'other.pub.pem');
    writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const r = runCli(['audit', 'verify', exportFile, '--pubkey', other]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/BROKEN/);
  });

  it('runs retention as a dry run against the gateway data directory', () => {
    const r = runCli(['audit', 'retention', '--dry-run', '--json'], { DEVICEGATE_DATA_DIR: t.dataDir, DEVICEGATE_CA__DEV_DIR: path.join(t.dataDir, 'ca') });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ throughSeq: null });
  });
});
