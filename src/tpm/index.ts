/** TPM 2.0 wire structures, software MakeCredential, and a minimal command client. */
export * from './constants';
export * from './errors';
export * from './marshal';
export * from './public-area';
export * from './attest';
export * from './signature';
export * from './make-credential';
export * from './transport';
export * from './client';
export * from './templates';
