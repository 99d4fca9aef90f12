/**
 * TCG TPM Vendor ID Registry (v1.06): the `id:XXXXXXXX` values allowed in tcg-at-tpmManufacturer. Registry data,
 * as carried by SimpleWebAuthn `tpm/constants.ts` and go-attestation `attest/vendors.go`.
 */
export const TCG_VENDOR_IDS: ReadonlyMap<string, string> = new Map([
  ['414D4400', 'AMD'],
  ['414E5400', 'Ant Group'],
  ['41544D4C', 'Atmel'],
  ['4252434D', 'Broadcom'],
  ['4353434F', 'Cisco'],
  ['464C5953', 'Flyslice Technologies'],
  ['524F4343', 'Fuzhou Rockchip'],
  ['474F4F47', 'Google'],
  ['48504900', 'HP Inc.'],
  ['48504500', 'Hewlett Packard Enterprise'],
  ['48495349', 'Huawei'],
  ['49424D00', 'IBM'],
  ['49465800', 'Infineon'],
  ['494E5443', 'Intel'],
  ['4C454E00', 'Lenovo'],
  ['4D534654', 'Microsoft'],
  ['4E534D20', 'National Semiconductor'],
  ['4E545A00', 'Nationz'],
  ['4E544300', 'Nuvoton Technology'],
  ['51434F4D', 'Qualcomm'],
  ['534D534E', 'Samsung'],
  ['534E5300', 'Sinosun'],
  ['534D5343', 'SMSC'],
  ['53544D20', 'STMicroelectronics'],
  ['54584E00', 'Texas Instruments'],
  ['57454300', 'Winbond'],
]);

/** The FIDO conformance tool's fake vendor; never real hardware. */
export const FIDO_TEST_VENDOR_ID = 'FFFFF1D0';

/** Normalises `id:4e544300` → `4E544300`; returns null for anything not of that shape. */
export function parseVendorId(value: string | undefined): string | null {
  const m = /^id:([0-9a-fA-F]{8})$/.exec(value ?? '');
  return m ? m[1]!.toUpperCase() : null;
}
