/**
 * What `decide()` needs to know, and nothing else. The service gathers these facts (src/concentrator/gather-facts.ts
 * describes the lookups); the policy never touches a store, a clock or the network.
 *
 * Every "maybe" is an explicit variant so that a missing fact cannot be mistaken for a good one: the policy has to
 * name each variant in an exhaustive switch, and anything it does not recognise is a deny.
 */
import type { DeviceStatus, Platform, RevocationReason } from '../domain/types';

/** The connection event a decision is about (same values as the API's `event`). */
export type DecisionEvent = 'connect' | 'reauth' | 'disconnect';

/** The certificate devicegate issued (or not) for the connecting peer. */
export type CertificateFact =
  /** The request carried no identifier that can name a certificate. */
  | { readonly kind: 'absent' }
  /** The certificate was issued by a CA that is not devicegate's device CA (a private or another organisation's). */
  | { readonly kind: 'foreign' }
  /** Issuer looks like ours (or is unknown) but devicegate has no record of this certificate. */
  | { readonly kind: 'unknown' }
  /** The identifiers in the request disagree with each other or with the record (e.g. SAN device id ≠ record). */
  | { readonly kind: 'mismatch'; readonly detail: string }
  | {
      readonly kind: 'known';
      readonly serialHex: string;
      readonly deviceId: string;
      /** Epoch ms. */
      readonly notBefore: number;
      readonly notAfter: number;
      readonly issuedAt: number;
      /** Null when not revoked. */
      readonly revocation: { readonly reason: RevocationReason; readonly revokedAt: number } | null;
    };

/** The device the certificate record points at. */
export type DeviceFact =
  /** Not looked up because the certificate fact already decides (absent, foreign, unknown, mismatch). */
  | { readonly kind: 'not_looked_up' }
  /** The record's device id is not in the registry. */
  | { readonly kind: 'missing' }
  | {
      readonly kind: 'found';
      readonly id: string;
      readonly status: DeviceStatus;
      readonly platform: Platform;
      readonly owner: string | null;
      readonly department: string | null;
    };

/** Directory facts about the connecting user, needed only for the `department` username rule. */
export type UserFact =
  | { readonly kind: 'not_looked_up' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'known'; readonly departments: readonly string[] };

/**
 * Posture signals: a typed slot for the later posture issue. Recorded and passed to `decide()`, which notes them but
 * denies nothing on them yet. All fields are optional because no collector exists yet.
 */
export interface PostureSignals {
  /** Epoch ms when the signals were collected (attested by the device agent). */
  readonly collectedAt?: number | undefined;
  readonly diskEncrypted?: boolean | null | undefined;
  readonly osVersion?: string | null | undefined;
  readonly patchLevel?: string | null | undefined;
  readonly edrHealthy?: boolean | null | undefined;
}

/** Everything `decide()` evaluates, gathered for one request. */
export type DecisionFacts =
  | {
      readonly status: 'gathered';
      readonly event: DecisionEvent;
      readonly certificate: CertificateFact;
      readonly device: DeviceFact;
      readonly user: UserFact;
      /** The connecting username (trimmed), null when the concentrator sent none (certificate-only clients). */
      readonly username: string | null;
      readonly posture: PostureSignals | null;
    }
  /** The facts could not be gathered (store down, deadline passed): always INTERNAL_ERROR, i.e. deny. */
  | { readonly status: 'unavailable'; readonly detail: string };
