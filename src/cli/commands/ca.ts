import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import {
  createCaHierarchy,
  memoryKeyProvider,
  Pkcs11Token,
  pkcs11KeyProvider,
  writeCaFiles,
  type CaHierarchy,
} from '../../ca';
import type { CaKeyAlgorithm } from '../../ca/signer';
import { badRequest } from '../../domain/errors';
import { cliPrincipal } from '../../services/actors';
import { parseRevocationReason } from '../../services/pki';
import { output, reportError, type GlobalOptions } from '../context';
import type { RunWithContext } from '../run';

const ALGORITHMS: readonly CaKeyAlgorithm[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

interface InitOptions {
  out: string;
  algorithm: string;
  organization: string;
  passphraseFile?: string;
  keepRootKey?: boolean;
  pkcs11Module?: string;
  tokenLabel?: string;
  pinFile?: string;
}

const readSecretFile = (file: string): string => readFileSync(file, 'utf8').replace(/\r?\n$/, '');

export function registerCaCommands(program: Command, run: RunWithContext): void {
  const ca = program.command('ca').description('the certificate authority: create it, issue and revoke by hand, publish the CRL');

  ca.command('init')
    .description('create a production CA (root, issuing CA, OCSP signer) into files, or with keys inside a PKCS#11 token')
    .requiredOption('--out <dir>', 'directory for the certificates (and keys, unless they live in a token)')
    .option('--algorithm <alg>', `key algorithm: ${ALGORITHMS.join(', ')}`, 'ec-p256')
    .option('--organization <name>', 'O= of the CA subjects (e.g. "Stadt Musterstadt")', 'devicegate')
    .option('--passphrase-file <file>', 'encrypt the private key files with the passphrase in this file')
    .option('--keep-root-key', 'also write the root private key (store it offline); default: discard it')
    .option('--pkcs11-module <path>', 'generate the keys inside this PKCS#11 token instead of files (e.g. /usr/lib/softhsm/libsofthsm2.so)')
    .option('--token-label <label>', 'PKCS#11 token label')
    .option('--pin-file <file>', 'file with the PKCS#11 user PIN')
    .action(async (opts: InitOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      let token: Pkcs11Token | null = null;
      try {
        if (!(ALGORITHMS as readonly string[]).includes(opts.algorithm)) {
          throw badRequest('INVALID_ALGORITHM', `--algorithm must be one of ${ALGORITHMS.join(', ')}.`);
        }
        const out = path.resolve(opts.out);
        let h: CaHierarchy;
        if (opts.pkcs11Module) {
          if (!opts.tokenLabel || !opts.pinFile) throw badRequest('PKCS11_OPTIONS', '--token-label and --pin-file are required with --pkcs11-module.');
          token = Pkcs11Token.open({ modulePath: opts.pkcs11Module, tokenLabel: opts.tokenLabel, pin: readSecretFile(opts.pinFile) });
          h = await createCaHierarchy({ nowMs: Date.now(), keys: pkcs11KeyProvider(token), algorithm: opts.algorithm as CaKeyAlgorithm, organization: opts.organization });
          writeCaFiles(h, { rootCert: `${out}/root.crt.pem`, issuingCert: `${out}/issuing.crt.pem`, ocspCert: `${out}/ocsp.crt.pem`, chain: `${out}/chain.pem` });
        } else {
          h = await createCaHierarchy({ nowMs: Date.now(), keys: memoryKeyProvider(), algorithm: opts.algorithm as CaKeyAlgorithm, organization: opts.organization });
          writeCaFiles(
            h,
            {
              rootCert: `${out}/root.crt.pem`,
              ...(opts.keepRootKey ? { rootKey: `${out}/root.key.pem` } : {}),
              issuingCert: `${out}/issuing.crt.pem`,
              issuingKey: `${out}/issuing.key.pem`,
              ocspCert: `${out}/ocsp.crt.pem`,
              ocspKey: `${out}/ocsp.key.pem`,
              chain: `${out}/chain.pem`,
            },
            opts.passphraseFile ? { passphrase: readSecretFile(opts.passphraseFile) } : {},
          );
        }
        const snippet = opts.pkcs11Module
          ? [
              'ca:',
              '  source: pkcs11',
              '  files:',
              `    rootCert: ${out}/root.crt.pem`,
              `    issuingCert: ${out}/issuing.crt.pem`,
              `    ocspCert: ${out}/ocsp.crt.pem`,
              '  pkcs11:',
              `    module: ${opts.pkcs11Module}`,
              `    tokenLabel: ${opts.tokenLabel}`,
              `    pinFile: ${path.resolve(opts.pinFile ?? '')}`,
            ]
          : [
              'ca:',
              '  source: file',
              '  files:',
              `    rootCert: ${out}/root.crt.pem`,
              `    issuingCert: ${out}/issuing.crt.pem`,
              `    issuingKey: ${out}/issuing.key.pem`,
              `    ocspCert: ${out}/ocsp.crt.pem`,
              `    ocspKey: ${out}/ocsp.key.pem`,
              ...(opts.passphraseFile ? [`    keyPassphraseFile: ${path.resolve(opts.passphraseFile)}`] : []),
            ];
        output(Boolean(g.json), { dir: out, pkcs11: Boolean(opts.pkcs11Module), root_key_kept: Boolean(opts.keepRootKey) }, () =>
          [
            `Created a CA in ${out}${opts.pkcs11Module ? ` (keys inside token "${opts.tokenLabel}")` : ''}.`,
            opts.keepRootKey || opts.pkcs11Module ? '' : 'The root private key was not kept: the root can only sign this issuing CA.',
            'Configuration for this CA:',
            '',
            ...snippet.map((l) => `  ${l}`),
          ].join('\n'),
        );
      } catch (e) {
        process.exitCode = reportError(e, Boolean(g.json));
      } finally {
        await token?.close().catch(() => undefined);
      }
    });

  ca.command('issue')
    .description("issue a device certificate from a CSR by hand (IT's manual cases; audited)")
    .requiredOption('--csr <file>', 'PKCS#10 CSR (PEM or DER); only its public key is used')
    .requiredOption('--device <id>', 'device id (must be registered and active or registered)')
    .option('--validity-seconds <n>', 'lifetime (capped by ca.deviceCert.maxValiditySeconds)', (v) => Number.parseInt(v, 10))
    .option('--out <file>', 'write the certificate PEM here instead of stdout')
    .action((opts: { csr: string; device: string; validitySeconds?: number; out?: string }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const device = await ctx.services.registry.get(opts.device);
        if (device.status !== 'registered' && device.status !== 'active') {
          throw badRequest('DEVICE_NOT_ELIGIBLE', `A ${device.status} device gets no certificate.`);
        }
        const issued = await ctx.services.pki.issue({
          deviceId: device.id,
          csr: readFileSync(opts.csr),
          via: 'manual',
          actor: cliPrincipal(),
          validitySeconds: opts.validitySeconds,
        });
        if (opts.out) writeFileSync(opts.out, issued.pem);
        output(ctx.json, { serial_hex: issued.serialHex, sha256: issued.sha256, not_after: new Date(issued.notAfter).toISOString(), pem: issued.pem }, () =>
          opts.out ? `Issued ${issued.serialHex} for ${device.id}, valid until ${new Date(issued.notAfter).toISOString()}; written to ${opts.out}.` : issued.pem.trimEnd(),
        );
      }),
    );

  ca.command('revoke')
    .description('revoke one certificate (--serial) or every certificate of a device (--device)')
    .option('--serial <hex>', 'certificate serial (hex, colons allowed)')
    .option('--device <id>', 'revoke all certificates of this device (does not change the device status)')
    .option('--reason <reason>', 'RFC 5280 reason, e.g. keyCompromise, superseded, cessationOfOperation', 'unspecified')
    .action((opts: { serial?: string; device?: string; reason: string }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        if (Boolean(opts.serial) === Boolean(opts.device)) throw badRequest('USAGE', 'Give exactly one of --serial or --device.');
        const reason = parseRevocationReason(opts.reason);
        if (opts.serial) {
          const c = await ctx.services.pki.revokeSerial(opts.serial, reason, cliPrincipal());
          output(ctx.json, { serial_hex: c.serialHex, device_id: c.deviceId, revoked: 1 }, () => `Revoked ${c.serialHex} (${reason}).`);
        } else {
          const device = await ctx.services.registry.get(opts.device as string);
          const n = await ctx.services.pki.revokeDevice(device.id, reason, cliPrincipal());
          output(ctx.json, { device_id: device.id, revoked: n }, () => `Revoked ${n} certificate(s) of ${device.id} (${reason}).`);
        }
      }),
    );

  ca.command('crl')
    .description('write the current CRL (DER, or PEM with --pem)')
    .option('--out <file>', 'write here instead of stdout')
    .option('--pem', 'PEM with the label X509 CRL')
    .action((opts: { out?: string; pem?: boolean }, cmd: Command) =>
      run(cmd.optsWithGlobals<GlobalOptions>(), async (ctx) => {
        const crl = await ctx.services.pki.crl();
        const data = opts.pem ? Buffer.from(crl.pem) : crl.der;
        if (opts.out) {
          writeFileSync(opts.out, data);
          output(ctx.json, { crl_number: crl.crlNumber.toString(), entries: crl.entryCount, next_update: new Date(crl.nextUpdateMs).toISOString() }, () =>
            `Wrote CRL #${crl.crlNumber} with ${crl.entryCount} entries to ${opts.out} (next update ${new Date(crl.nextUpdateMs).toISOString()}).`,
          );
        } else {
          process.stdout.write(data);
        }
      }),
    );
}
