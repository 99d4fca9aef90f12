/** Pure TPM attestation verifiers: EK certificates, AK checks, credential activation, Certify, CSR binding, `tpm` statements. */
export * from './errors';
export * from './x509';
export * from './spki';
export * from './key-policy';
export * from './tcg-vendors';
export * from './ek-certificate';
export * from './ak-public';
export * from './credential';
export * from './certify';
export * from './csr';
export * from './tpm-enrollment';
export * from './cbor';
export * from './cose';
export * from './authenticator-data';
export * from './tpm-statement';
export { pemBlocks, toPem } from './der';
