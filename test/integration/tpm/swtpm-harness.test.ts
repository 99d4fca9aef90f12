/** The swtpm harness itself: orderly shutdown keeps the DA lockout counter at 0 across restarts; clones are isolated. */
import { DEVICE_KEY_ATTRIBUTES, TPMA_OBJECT, TPM_ALG, TPM_RH, deviceKeyTemplate, srkTemplate, type TpmClient } from '../../../src/tpm';
import { describeWith, tool } from '../../helpers/requirements';
import { SwtpmHarness, type ProvisionedTpm } from '../../helpers/swtpm';

const TPM_PT_LOCKOUT_COUNTER = 0x20e;

/** Signs with a key whose noDA is clear: only then does an unorderly shutdown count against the DA counter. */
async function useDaProtectedKey(c: TpmClient): Promise<void> {
  const srk = await c.createPrimary(TPM_RH.OWNER, srkTemplate());
  const made = await c.create(srk.handle, deviceKeyTemplate(DEVICE_KEY_ATTRIBUTES & ~TPMA_OBJECT.noDA));
  const key = await c.load(srk.handle, made.private, made.public);
  await c.sign(key.handle, Buffer.alloc(32, 1), TPM_ALG.ECDSA, TPM_ALG.SHA256);
  await c.flushContext(key.handle);
  await c.flushContext(srk.handle);
}

describeWith([tool('swtpm'), tool('swtpm_setup'), tool('openssl')], 'swtpm test harness', () => {
  let h: SwtpmHarness;
  let tpm: ProvisionedTpm;

  beforeAll(async () => {
    h = await SwtpmHarness.create();
    tpm = await h.provisionTpm(await h.createManufacturerCa('Harness TPM'));
  }, 60_000);

  afterAll(async () => {
    await h?.dispose();
  });

  it('restarts the same state five times without raising the dictionary-attack lockout counter (TPM2_Shutdown before kill)', async () => {
    for (let i = 0; i < 5; i++) {
      const run = await h.startSwtpm(tpm);
      const c = run.client();
      expect(await c.getProperty(TPM_PT_LOCKOUT_COUNTER)).toBe(0);
      await useDaProtectedKey(c);
      await run.stop();
    }
  });

  it('shows why: a kill without TPM2_Shutdown is an unorderly shutdown and raises the counter', async () => {
    const clone = await h.cloneTpm(tpm);
    const first = await h.startSwtpm(clone);
    await useDaProtectedKey(first.client());
    const exited = new Promise((r) => first.process.once('exit', r));
    first.process.kill('SIGKILL');
    await exited;
    await first.stop();
    const second = await h.startSwtpm(clone);
    try {
      expect(await second.client().getProperty(TPM_PT_LOCKOUT_COUNTER)).toBeGreaterThanOrEqual(1);
    } finally {
      await second.stop();
    }
  });

  it('gives each clone its own persistent objects', async () => {
    const a = await h.startSwtpm(await h.cloneTpm(tpm));
    const b = await h.startSwtpm(await h.cloneTpm(tpm));
    try {
      const ca = a.client();
      await ca.evictControl(0x81010001, 0x81010001);
      expect(await ca.tryReadPublic(0x81010001)).toBeNull();
      expect(await b.client().tryReadPublic(0x81010001)).not.toBeNull();
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
