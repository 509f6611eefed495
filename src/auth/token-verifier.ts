import { readFile } from 'node:fs/promises';
import { X509Certificate, type KeyObject } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { ResourceAccess } from './access.js';

/**
 * Verifies the Bearer tokens of the Docker token specification: those of
 * Berth's own token service, or those of an external one (`auth.token`)
 * whose keys come from a certificate bundle or a JWKS. A token is refused
 * when its signature does not verify with a trusted key, when its `alg` is
 * not an asymmetric signature (`none` and HMAC included), when it is
 * expired or not yet valid, or when its issuer or audience differ.
 */

export interface VerifiedToken {
  subject: string;
  access: ResourceAccess[];
}

export type Verification = { ok: true; token: VerifiedToken } | { ok: false; reason: string };

export interface TokenVerifier {
  verify(token: string): Promise<Verification>;
}

export const asymmetricAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

const clockToleranceSeconds = 5;

interface VerifyOptions {
  issuer: string;
  audience: string;
  algorithms: string[];
  /** Checked when set: Berth's access tokens say `JWT`. */
  typ?: string;
}

/** A verifier of tokens signed with one public key, such as Berth's own. */
export function keyVerifier(key: KeyObject, options: VerifyOptions): TokenVerifier {
  return { verify: (token) => verifyWith(token, key, options) };
}

export interface ExternalTokenOptions {
  issuer: string;
  service: string;
  /** PEM file of certificates whose public keys may sign tokens. */
  rootCertBundle?: string | undefined;
  /** A JWKS: an `https://` URL, fetched and cached, or a file. */
  jwks?: string | undefined;
}

/** A verifier of an external token service's tokens (`auth.token`). */
export async function externalVerifier(options: ExternalTokenOptions): Promise<TokenVerifier> {
  const sources: (KeyObject | JWTVerifyGetKey)[] = [];
  if (options.rootCertBundle) sources.push(...(await certificateKeys(options.rootCertBundle)));
  if (options.jwks) sources.push(await jwksKeys(options.jwks));
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.service,
    algorithms: asymmetricAlgorithms,
  };
  return {
    async verify(token) {
      let last: Verification = { ok: false, reason: 'no trusted key' };
      for (const source of sources) {
        last = await verifyWith(token, source, verifyOptions);
        // Claims are checked only once a signature verified: no other key would do better.
        if (last.ok || !last.reason.startsWith('signature')) return last;
      }
      return last;
    },
  };
}

async function verifyWith(
  token: string,
  key: KeyObject | JWTVerifyGetKey,
  options: VerifyOptions,
): Promise<Verification> {
  try {
    const verifyOptions = {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: options.algorithms,
      requiredClaims: ['exp'],
      clockTolerance: clockToleranceSeconds,
      ...(options.typ === undefined ? {} : { typ: options.typ }),
    };
    const { payload } =
      typeof key === 'function'
        ? await jwtVerify(token, key, verifyOptions)
        : await jwtVerify(token, key, verifyOptions);
    return { ok: true, token: { subject: payload.sub ?? '', access: accessOf(payload) } };
  } catch (error) {
    return { ok: false, reason: describeFailure(error) };
  }
}

/** The `access` claim, keeping only well-formed entries. */
function accessOf(payload: JWTPayload): ResourceAccess[] {
  const access = payload.access;
  if (!Array.isArray(access)) return [];
  return access.flatMap((entry: unknown) => {
    const { type, name, actions } = (entry ?? {}) as Record<string, unknown>;
    if (typeof type !== 'string' || typeof name !== 'string' || !Array.isArray(actions)) return [];
    return [{ type, name, actions: actions.filter((a): a is string => typeof a === 'string') }];
  });
}

/** Why a token was refused; failures a different key might avoid start with "signature". */
function describeFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    return `token claim "${error.claim}" refused: ${error.reason}`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'signature by an unknown key';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return 'token malformed';
  }
  // A key of another kind than the token's algorithm: jose throws a TypeError.
  return 'signature key does not fit the token';
}

/** The public key of every certificate in a PEM bundle; each is tried in turn. */
async function certificateKeys(path: string): Promise<KeyObject[]> {
  const text = await readFile(path, 'utf8');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new Error(`No certificate in the bundle "${path}"`);
  return blocks.map((pem) => new X509Certificate(pem).publicKey);
}

async function jwksKeys(location: string): Promise<JWTVerifyGetKey> {
  if (/^https?:\/\//.test(location)) return createRemoteJWKSet(new URL(location));
  const document = JSON.parse(await readFile(location, 'utf8')) as Parameters<
    typeof createLocalJWKSet
  >[0];
  return createLocalJWKSet(document);
}
