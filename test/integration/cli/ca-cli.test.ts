import { writeFileSync } from 'node:fs';
import { runCli } from '../../helpers/cli';
import { genKey, makeCsr, makeTempDir, openssl, opensslOk, type TempDir } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';
import { createSoftHsmToken, softhsmRequirements, type SoftHsmToken } from '../../helpers/softhsm';

const HEADER = 'serial_number,platform';

describeWith([tool('openssl')], 'devicegate ca (CLI) with a file CA', () => {
  let dir: TempDir;
  let env: Record<string, string>;

  beforeAll(() => {
    dir = makeTempDir('dg-ca-cli-');
    const init = runCli(['ca', 'init', '--out', dir.file('ca'), '--organization', 'Stadt Musterstadt']);
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    expect(init.stdout).toMatch(/source: file/);
    env = {
      DEVICEGATE_DATA_DIR: dir.file('data'),
      DEVICEGATE_CA__SOURCE: 'file',
      DEVICEGATE_CA__FILES__ROOT_CERT: dir.file('ca/root.crt.pem'),
      DEVICEGATE_CA__FILES__ISSUING_CERT: dir.file('ca/issuing.crt.pem'),
      DEVICEGATE_CA__FILES__ISSUING_KEY: dir.file('ca/issuing.key.pem'),
      DEVICEGATE_CA__FILES__OCSP_CERT: dir.file('ca/ocsp.crt.pem'),
      DEVICEGATE_CA__FILES__OCSP_KEY: dir.file('ca/ocsp.key.pem'),
    };
  });
  afterAll(() => dir?.cleanup());

  it('refuses to overwrite an existing CA', () => {
    const again = runCli(['ca', 'init', '--out', dir.file('ca')]);
    expect(again.status).toBe(4);
    expect(again.stderr).toMatch(/CA_FILE_EXISTS/);
  });

  it('issues by hand for a registered device, revokes it, and the CRL it writes makes OpenSSL reject the certificate', () => {
    writeFileSync(dir.file('inv.csv'), `${HEADER}\nMAN-1,linux\n`);
    expect(runCli(['devices', 'import', dir.file('inv.csv')], env).status).toBe(0);
    const list = JSON.parse(runCli(['devices', 'list', '--json'], env).stdout) as { id: string }[];
    const deviceId = list[0]!.id;
    const csr = makeCsr(dir, genKey(dir, 'manual', 'p384'));
    const issued = runCli(['ca', 'issue', '--csr', csr.path, '--device', deviceId, '--out', dir.file('manual.crt.pem'), '--json'], env);
    expect(issued.status).toBe(0);
    const { serial_hex: serial } = JSON.parse(issued.stdout) as { serial_hex: string };
    expect(opensslOk(['verify', '-CAfile', dir.file('ca/chain.pem'), '-purpose', 'sslclient', dir.file('manual.crt.pem')]).stdout).toMatch(/OK/);
    expect(opensslOk(['x509', '-in', dir.file('manual.crt.pem'), '-noout', '-issuer']).stdout).toMatch(/Stadt Musterstadt/);

    expect(runCli(['ca', 'revoke', '--serial', serial, '--reason', 'keyCompromise'], env).status).toBe(0);
    const crl = runCli(['ca', 'crl', '--pem', '--out', dir.file('crl.pem')], env);
    expect(crl.status).toBe(0);
    expect(crl.stdout).toMatch(/with 1 entries/);
    const v = openssl(['verify', '-crl_check', '-CAfile', dir.file('ca/chain.pem'), '-CRLfile', dir.file('crl.pem'), dir.file('manual.crt.pem')]);
    expect(v.code).not.toBe(0);
    expect(v.all).toMatch(/certificate revoked/);
  });

  it('refuses manual issuance for an unknown device and for garbage CSRs', () => {
    const csr = makeCsr(dir, genKey(dir, 'x', 'p256'));
    const unknown = runCli(['ca', 'issue', '--csr', csr.path, '--device', '00000000-0000-4000-8000-000000000000'], env);
    expect(unknown.status).toBe(3);
    writeFileSync(dir.file('garbage.csr'), 'not a csr');
    const list = JSON.parse(runCli(['devices', 'list', '--json'], env).stdout) as { id: string }[];
    const garbage = runCli(['ca', 'issue', '--csr', dir.file('garbage.csr'), '--device', list[0]!.id], env);
    expect(garbage.status).toBe(4);
    expect(garbage.stderr).toMatch(/CSR_MALFORMED/);
  });
});

describeWith([tool('openssl'), ...softhsmRequirements], 'devicegate ca (CLI) with the issuing key in SoftHSM2', () => {
  let dir: TempDir;
  let token: SoftHsmToken;

  beforeAll(() => {
    dir = makeTempDir('dg-ca-hsm-cli-');
    token = createSoftHsmToken('dg-cli');
  });
  afterAll(() => {
    dir?.cleanup();
    token?.cleanup();
  });

  it('creates the CA keys inside the token and issues device certificates that OpenSSL accepts', () => {
    const pinFile = dir.write('pin', `${token.pin}\n`);
    const hsmEnv = { SOFTHSM2_CONF: token.conf };
    const init = runCli(['ca', 'init', '--out', dir.file('ca'), '--pkcs11-module', token.modulePath, '--token-label', token.label, '--pin-file', pinFile], hsmEnv);
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    const env = {
      ...hsmEnv,
      DEVICEGATE_DATA_DIR: dir.file('data'),
      DEVICEGATE_CA__SOURCE: 'pkcs11',
      DEVICEGATE_CA__FILES__ROOT_CERT: dir.file('ca/root.crt.pem'),
      DEVICEGATE_CA__FILES__ISSUING_CERT: dir.file('ca/issuing.crt.pem'),
      DEVICEGATE_CA__FILES__OCSP_CERT: dir.file('ca/ocsp.crt.pem'),
      DEVICEGATE_CA__PKCS11__MODULE: token.modulePath,
      DEVICEGATE_CA__PKCS11__TOKEN_LABEL: token.label,
      DEVICEGATE_CA__PKCS11__PIN_FILE: pinFile,
    };
    writeFileSync(dir.file('inv.csv'), `${HEADER}\nHSM-1,windows\n`);
    expect(runCli(['devices', 'import', dir.file('inv.csv')], env).status).toBe(0);
    const deviceId = (JSON.parse(runCli(['devices', 'list', '--json'], env).stdout) as { id: string }[])[0]!.id;
    const csr = makeCsr(dir, genKey(dir, 'hsmdev', 'p256'));
    const issued = runCli(['ca', 'issue', '--csr', csr.path, '--device', deviceId, '--out', dir.file('hsm.crt.pem')], env);
    expect(issued.stderr).toBe('');
    expect(issued.status).toBe(0);
    expect(opensslOk(['verify', '-CAfile', dir.file('ca/chain.pem'), '-purpose', 'sslclient', dir.file('hsm.crt.pem')]).stdout).toMatch(/OK/);
  });
});
