/**
 * Public surface of the certificate authority module. Import from `src/ca` rather than from the files.
 */
export { loadCa, assembleAuthority, type CertificateAuthority, type LoadCaOptions } from './authority';
export { acceptCsr, DEFAULT_CSR_MAX_BYTES, type AcceptedCsr } from './csr';
export { checkDeviceKey, RSA_MIN_BITS, RSA_MAX_BITS, type AcceptedKey } from './key-policy';
export {
  DeviceCertificateIssuer,
  deviceSubjectName,
  joinUrl,
  type DeviceCertProfile,
  type IssueRequest,
  type IssuedCertificate,
  type IssuingCa,
} from './issuer';
export { buildCrl, crlToPem, serialContentFromHex, CRL_REASON_CODE, type BuildCrlInput, type BuiltCrl, type CrlEntry } from './crl';
export {
  createOcspResponder,
  decodeOcspGetPath,
  OCSP_MALFORMED_REQUEST,
  OCSP_INTERNAL_ERROR,
  OCSP_TRY_LATER,
  type OcspCertStatus,
  type OcspResponder,
  type OcspResponderOptions,
  type OcspResult,
  type OcspStatusLookup,
} from './ocsp';
export {
  createCaHierarchy,
  ensureDevCa,
  isDevCertificate,
  issueOcspSigner,
  memoryKeyProvider,
  pkcs11KeyProvider,
  writeCaFiles,
  DEFAULT_PKCS11_LABELS,
  DEV_CA_FILES,
  DEV_ORGANIZATION,
  type CaFilePaths,
  type CaHierarchy,
  type CaHierarchyOptions,
  type CaKeyProvider,
  type CaLog,
  type CaMember,
  type CaRole,
  type DevCaPaths,
} from './hierarchy';
export { Pkcs11Token, p1363ToDer, type Pkcs11TokenOptions } from './pkcs11';
export {
  createKeyObjectSigner,
  loadFileSigner,
  resolvePassphrase,
  signatureAlgorithmFor,
  type CaKeyAlgorithm,
  type CaKeyType,
  type PassphraseSource,
  type SignatureAlgorithm,
  type Signer,
} from './signer';
export { parseCertificate, type ParsedCertificate } from './x509';
