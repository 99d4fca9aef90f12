/**
 * Device certificate issuance from a precomputed template.
 *
 * Why a template: everything but the serial, validity, device id and key is identical for every device
 * certificate, so the issuer name, signature algorithm and constant extensions are encoded once at construction and
 * each issuance only concatenates a handful of small DER pieces before one `Signer.sign` call. This is what moves
 * issuance from ~485/s (@peculiar/x509) to the signing floor.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { AppError, badRequest } from '../domain/errors';
import type { CertificateRecord } from '../domain/types';
import { isUuid } from '../lib/ids';
import { acceptCsr, DEFAULT_CSR_MAX_BYTES } from './csr';
import { TAG, seq, tlv, toPem, explicit, x509Time } from './der';
import { checkDeviceKey, type AcceptedKey } from './key-policy';
import type { Signer } from './signer';
import {
  KU,
  OID,
  VERSION_V3,
  authorityKeyIdExt,
  basicConstraintsExt,
  crlDistributionPointExt,
  encodeName,
  extKeyUsageExt,
  keyIdentifier,
  keyUsageExt,
  ocspAiaExt,
  sanUriExt,
  subjectKeyIdExt,
  wrapSigned,
  type ParsedCertificate,
} from './x509';

/** Device certificate lifetime and URL settings (from `ca.deviceCert` and `server.publicUrl`). */
export interface DeviceCertProfile {
  /** Public base URL of this gateway, e.g. `https://devicegate.example.de`; CRL DP and OCSP AIA hang off it. */
  readonly publicUrl: string;
  readonly defaultValiditySeconds: number;
  /** Upper bound; longer requests are capped to it, never refused. */
  readonly maxValiditySeconds: number;
  /** How far `notBefore` is set before `now`, to tolerate slow device clocks. */
  readonly backdateSeconds: number;
  /** CSR size cap in bytes (default 16 KiB). */
  readonly csrMaxBytes?: number;
}

/** What the caller (enrollment or the CLI) decided; the CSR, if any, only supplies the key. */
export interface IssueRequest {
  /** A PKCS#10 CSR (PEM or DER); proof of possession is verified. */
  readonly csr?: Buffer | string;
  /** A DER SubjectPublicKeyInfo whose possession the caller has already established (e.g. by TPM attestation). */
  readonly spki?: Buffer;
  /** devicegate device id (lower-case UUID): becomes CN and SAN `urn:uuid:<id>`. */
  readonly deviceId: string;
  readonly nowMs: number;
  /** Requested lifetime; defaults to the profile's and is capped by its maximum and by the CA's own expiry. */
  readonly validitySeconds?: number;
  /** `enroll`, `renew` or `manual`; copied into the returned record. */
  readonly issuedVia: string;
}

/** An issued certificate: the store's CertificateRecord plus the DER and the accepted key. */
export interface IssuedCertificate extends CertificateRecord {
  readonly der: Buffer;
  readonly keyKind: AcceptedKey['kind'];
}

/** The issuing CA as the issuer needs it: its parsed certificate and the matching signer. */
export interface IssuingCa {
  readonly cert: ParsedCertificate;
  readonly signer: Signer;
}

/** Join a base URL and an absolute path without doubling or dropping the slash. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

/**
 * Issues device certificates with exactly this profile (issue 3 §2): CN = device id, SAN URI `urn:uuid:<id>`,
 * EKU clientAuth only, KU digitalSignature (critical), BasicConstraints CA:false (critical), SKI, AKI, CRL DP
 * `<publicUrl>/v1/crl`, OCSP AIA `<publicUrl>/v1/ocsp`, a random 128-bit positive serial, validity capped.
 */
export class DeviceCertificateIssuer {
  private readonly signer: Signer;
  private readonly profile: DeviceCertProfile;
  private readonly issuerNotBefore: number;
  private readonly issuerNotAfter: number;
  /** signature AlgorithmIdentifier ‖ issuer Name. */
  private readonly algAndIssuer: Buffer;
  /** BC ‖ KU ‖ EKU. */
  private readonly extsHead: Buffer;
  /** AKI. */
  private readonly extAki: Buffer;
  /** CRL DP ‖ AIA. */
  private readonly extsTail: Buffer;
  private readonly randomPool = Buffer.allocUnsafe(4096);
  private randomOffset = 4096;

  constructor(issuing: IssuingCa, profile: DeviceCertProfile) {
    if (!issuing.signer.spki.equals(issuing.cert.spki)) {
      throw new AppError('internal', 'CA_KEY_MISMATCH', 'The issuing CA key does not match the issuing CA certificate.');
    }
    if (profile.maxValiditySeconds < 1 || profile.defaultValiditySeconds < 1 || profile.backdateSeconds < 0) {
      throw new AppError('internal', 'CA_PROFILE_INVALID', 'Device certificate validity settings are invalid.');
    }
    let url: URL;
    try {
      url = new URL(profile.publicUrl);
    } catch (cause) {
      throw new AppError('internal', 'CA_PUBLIC_URL_INVALID', 'The public URL for CRL and OCSP is not a URL.', { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AppError('internal', 'CA_PUBLIC_URL_INVALID', 'The public URL must be http or https.');
    }
    this.signer = issuing.signer;
    this.profile = profile;
    this.issuerNotBefore = issuing.cert.notBeforeMs;
    this.issuerNotAfter = issuing.cert.notAfterMs;
    this.algAndIssuer = Buffer.concat([issuing.signer.algorithm.identifier, issuing.cert.subjectName]);
    this.extsHead = Buffer.concat([
      basicConstraintsExt(false),
      keyUsageExt([KU.digitalSignature]),
      extKeyUsageExt([OID.clientAuth]),
    ]);
    this.extAki = authorityKeyIdExt(issuing.cert.keyId);
    this.extsTail = Buffer.concat([
      crlDistributionPointExt(joinUrl(profile.publicUrl, '/v1/crl')),
      ocspAiaExt(joinUrl(profile.publicUrl, '/v1/ocsp')),
    ]);
  }

  /**
   * Issue one device certificate. Exactly one of `csr` / `spki` must be given. Bad input throws AppError
   * `bad_request` (`CSR_*`, `KEY_*`, `DEVICE_ID_INVALID`, `VALIDITY_INVALID`, `ISSUE_KEY_SOURCE`); an issuing CA that
   * is not valid at `nowMs` throws `unavailable` `CA_NOT_VALID`.
   */
  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    if ((req.csr === undefined) === (req.spki === undefined)) {
      throw badRequest('ISSUE_KEY_SOURCE', 'Give exactly one of a CSR or a public key.');
    }
    if (typeof req.deviceId !== 'string' || !isUuid(req.deviceId)) {
      throw badRequest('DEVICE_ID_INVALID', 'The device id must be a lower-case UUID.');
    }
    const key =
      req.csr !== undefined
        ? acceptCsr(req.csr, { maxBytes: this.profile.csrMaxBytes ?? DEFAULT_CSR_MAX_BYTES }).key
        : checkDeviceKey(req.spki as Buffer, 'KEY');

    const requested = req.validitySeconds ?? this.profile.defaultValiditySeconds;
    if (!Number.isInteger(requested) || requested < 1) {
      throw badRequest('VALIDITY_INVALID', 'The requested validity must be a positive whole number of seconds.');
    }
    // Whole seconds: X.509 times carry no fractions, and the returned record must equal what the certificate says.
    const nowS = Math.floor(req.nowMs / 1000) * 1000;
    if (nowS < this.issuerNotBefore || nowS >= this.issuerNotAfter) {
      throw new AppError('unavailable', 'CA_NOT_VALID', 'The issuing CA certificate is not valid at this time.');
    }
    const lifetime = Math.min(requested, this.profile.maxValiditySeconds);
    const notBefore = Math.max(nowS - this.profile.backdateSeconds * 1000, this.issuerNotBefore);
    // RFC 5280 does not forbid outliving the issuer, but relying parties then reject the chain early: cap instead.
    const notAfter = Math.min(nowS + lifetime * 1000, this.issuerNotAfter);

    const serial = this.nextSerial();
    const uuidBytes = Buffer.from(req.deviceId, 'latin1');
    const tbs = seq(
      VERSION_V3,
      tlv(TAG.INTEGER, serial),
      this.algAndIssuer,
      seq(x509Time(notBefore), x509Time(notAfter)),
      seq(tlv(TAG.SET, seq(CN_OID, tlv(TAG.UTF8_STRING, uuidBytes)))),
      key.spki,
      explicit(
        3,
        seq(
          this.extsHead,
          subjectKeyIdExt(keyIdentifier(key.spki)),
          this.extAki,
          sanUriExt(`urn:uuid:${req.deviceId}`),
          this.extsTail,
        ),
      ),
    );
    const signature = await this.signer.sign(tbs);
    const der = wrapSigned(tbs, this.signer.algorithm.identifier, signature);
    return {
      der,
      pem: toPem(der, 'CERTIFICATE'),
      serialHex: serial.toString('hex'),
      sha256: createHash('sha256').update(der).digest('hex'),
      deviceId: req.deviceId,
      notBefore,
      notAfter,
      issuedAt: req.nowMs,
      issuedVia: req.issuedVia,
      keyKind: key.kind,
    };
  }

  /**
   * 16 octets from the CSPRNG with the top bit cleared and a non-zero first octet: a positive INTEGER that needs no
   * sign byte, so the DER content, `serialHex` and what concentrators print (`tls_serial_hex`) are the same hex.
   * That leaves 127 bits of entropy, far above CA/B Forum's 64.
   */
  private nextSerial(): Buffer {
    for (;;) {
      if (this.randomOffset + 16 > this.randomPool.length) {
        randomFillSync(this.randomPool);
        this.randomOffset = 0;
      }
      const s = Buffer.from(this.randomPool.subarray(this.randomOffset, this.randomOffset + 16));
      this.randomOffset += 16;
      s[0] = (s[0] as number) & 0x7f;
      if (s[0] !== 0) return s;
    }
  }
}

const CN_OID = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);

/** The subject Name the issuer writes for a device (exported for tests and lookups). */
export function deviceSubjectName(deviceId: string): Buffer {
  return encodeName([{ oid: OID.commonName, value: deviceId }]);
}
