import { toPem } from '../attestation/der';
import { TPM_RH, tpm2b } from '../tpm';
import { der } from './csr';

/**
 * Encodes a TPM-loadable key as a `TSS2 PRIVATE KEY` PEM (the format of tpm2-tss-engine / tpm2-openssl):
 * TPMKey ::= SEQUENCE { type OID 2.23.133.10.1.3 (loadable key), emptyAuth [0] EXPLICIT BOOLEAN TRUE,
 * parent INTEGER 0x40000001, pubkey OCTET STRING (TPM2B_PUBLIC), privkey OCTET STRING (TPM2B_PRIVATE) }.
 *
 * Parent 0x40000001 means "the owner-hierarchy primary made from the standard ECC P-256 storage template", which
 * is exactly `srkTemplate()` (checked against tpm2-openssl 1.1 with swtpm). The private part is the TPM-wrapped
 * blob: it can only be loaded by this TPM, so the file is not an exportable key. OpenVPN 2.6 uses it with
 * `providers tpm2 default` and `key <file>`.
 */
export function tss2PrivateKeyPem(publicArea: Buffer, privateBlob: Buffer): string {
  const oid = Buffer.from('0606678105 0a0103'.replace(/ /g, ''), 'hex'); // 2.23.133.10.1.3
  const emptyAuth = der(0xa0, Buffer.from([0x01, 0x01, 0xff]));
  const parentBytes = Buffer.alloc(4);
  parentBytes.writeUInt32BE(TPM_RH.OWNER);
  const parent = der(0x02, parentBytes);
  const body = der(0x30, oid, emptyAuth, parent, der(0x04, tpm2b(publicArea)), der(0x04, tpm2b(privateBlob)));
  return toPem(body, 'TSS2 PRIVATE KEY');
}
