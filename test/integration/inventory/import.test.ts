import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, ROOT, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';

const ek = (n: number): string => createHash('sha256').update(`ek-${n}`).digest('hex');
const HEADER = 'serial_number,platform,asset_tag,model,owner,department,ek_public_sha256';

describe('CSV inventory import', () => {
  let t: TestApp;
  let admin: string;
  beforeEach(async () => {
    t = await buildTestApp();
    admin = await bearer(t.services, 'it-admin');
  });
  afterEach(async () => t.cleanup());

  const post = (csv: string, dryRun = false) =>
    request(t.app)
      .post(`/v1/devices/import${dryRun ? '?dry_run=true' : ''}`)
      .set('Authorization', admin)
      .set('Content-Type', 'text/csv')
      .send(csv);

  it('imports rows, then re-imports the same file as updates (idempotent by serial number)', async () => {
    const csv = [HEADER, `NB-1,windows,A-1,"Latitude 7440, 14""",erika,Ordnungsamt,${ek(1)}`, `NB-2,linux,,,max,Bauamt,`].join('\r\n');
    const first = await post(csv).expect(201);
    expect(first.body).toMatchObject({ applied: true, rows: 2, created: 2, updated: 0, rejected: 0 });
    const nb1 = await t.store.devices.findBySerial('NB-1');
    expect(nb1).toMatchObject({ model: 'Latitude 7440, 14"', owner: 'erika', tpm: { ekPublicSha256: ek(1) } });
    const again = await post(csv).expect(201);
    expect(again.body).toMatchObject({ created: 0, updated: 2 });
    expect((await t.store.devices.findBySerial('NB-1'))?.id).toBe(nb1?.id);
    expect(await t.store.devices.count()).toBe(2);
  });

  it('dry run reports what would happen and writes nothing', async () => {
    const res = await post([HEADER, `D-1,windows,,,,,`].join('\n'), true).expect(200);
    expect(res.body).toMatchObject({ dry_run: true, applied: false, created: 1 });
    expect(await t.store.devices.count()).toBe(0);
  });

  it('writes nothing when any row is rejected and reports every rejected row with its reasons', async () => {
    await post([HEADER, `EXIST,windows,,,,,${ek(9)}`].join('\n')).expect(201);
    const csv = [
      HEADER,
      `OK-1,windows,,,,,`,
      `BAD-1,amiga,,,,,`, // unknown platform
      `,linux,,,,,`, // missing serial
      `OK-1,linux,,,,,`, // repeated serial
      `BAD-2,windows,,,,,nothex`, // malformed EK hash
      `BAD-3,windows,,,,,${ek(9)}`, // EK of another device
      `BAD-4,windows,,,,`, // too few fields
    ].join('\n');
    const res = await post(csv).expect(400);
    expect(res.body.error.code).toBe('IMPORT_REJECTED');
    const report = res.body.error.details.report as { line: number; action: string; reasons: string[] }[];
    expect(report.filter((r) => r.action === 'rejected').map((r) => r.line)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(report.find((r) => r.line === 3)?.reasons.join()).toMatch(/platform/);
    expect(report.find((r) => r.line === 5)?.reasons.join()).toMatch(/repeats line 2/);
    expect(report.find((r) => r.line === 7)?.reasons.join()).toMatch(/belongs to device EXIST/);
    expect(await t.store.devices.findBySerial('OK-1')).toBeNull();
    expect(await t.store.devices.count()).toBe(1);
  });

  it('rejects a file with an unknown or missing header column, broken quoting, or no rows', async () => {
    expect((await post('serial,platform\nX,linux').expect(400)).body.error.code).toBe('INVALID_CSV_HEADER');
    expect((await post('platform\nlinux').expect(400)).body.error.details.missing).toEqual(['serial_number']);
    expect((await post(`${HEADER}\n"unterminated,linux,,,,,`).expect(400)).body.error.code).toBe('INVALID_CSV');
    expect((await post('').expect(400)).body.error.code).toBe('INVALID_CSV');
  });

  it('refuses a non-CSV body and an oversized file', async () => {
    await request(t.app).post('/v1/devices/import').set('Authorization', admin).send({ a: 1 }).expect(400);
    const big = `${HEADER}\n${'X,linux,,,,,\n'.repeat(2_000_000)}`;
    expect((await post(big).expect(413)).body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('imports through the CLI against the same data directory, with --dry-run and --json', async () => {
    const file = path.join(t.dataDir, 'inv.csv');
    writeFileSync(file, [HEADER, `CLI-1,macos,,,,,`, `CLI-2,ios,,,,,`].join('\n'));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['-r', path.join(ROOT, 'scripts/ts-register.js'), path.join(ROOT, 'src/cli/index.ts'), ...args], {
        env: { ...process.env, DEVICEGATE_DATA_DIR: t.dataDir },
        encoding: 'utf8',
      });
    const dry = cli('devices', 'import', file, '--dry-run', '--json');
    expect(dry.status).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, created: 2 });
    const real = cli('devices', 'import', file);
    expect(real.status).toBe(0);
    expect(real.stdout).toMatch(/Imported 2 rows: 2 created/);
    expect(await t.store.devices.count()).toBe(2);
    writeFileSync(file, [HEADER, `CLI-3,beos,,,,,`].join('\n'));
    const bad = cli('devices', 'import', file);
    expect(bad.status).toBe(4);
    expect(bad.stdout).toMatch(/line 2 \(CLI-3\): platform/);
  });
});
