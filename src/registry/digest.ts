import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from '../errors/registry-error.js';

/**
 * Digests as the OCI image specification defines them ("Digests"):
 * `algorithm:encoded`. Berth accepts the two registered algorithms, sha256
 * and sha512, with lowercase hex of the exact length.
 */

export type DigestAlgorithm = 'sha256' | 'sha512';

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const digestPattern = /^(sha256|sha512):([a-f0-9]+)$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** Splits a digest string, or returns undefined when it is not a supported digest. */
export function parseDigest(value: string): ParsedDigest | undefined {
  const match = digestPattern.exec(value);
  if (!match) return undefined;
  const algorithm = match[1] as DigestAlgorithm;
  const hex = match[2] as string;
  if (hex.length !== hexLength[algorithm]) return undefined;
  return { algorithm, hex };
}

export function isDigest(value: string): boolean {
  return parseDigest(value) !== undefined;
}

/** Parses a digest supplied by a client, answering DIGEST_INVALID when it is not one. */
export function requireDigest(value: string | null | undefined): ParsedDigest {
  const parsed = value ? parseDigest(value) : undefined;
  if (!parsed) {
    throw new RegistryError(
      'DIGEST_INVALID',
      `Invalid digest "${value ?? ''}": expected sha256:<64 hex> or sha512:<128 hex>`,
    );
  }
  return parsed;
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
