import { randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { ResourceAccess } from './access.js';
import type { SigningKey } from './signing-key.js';

/**
 * Berth's own token service, the issuing side of the Docker token
 * specification: signed JWTs (`ES256`) that carry `iss`, `sub`, `aud` (the
 * service), `exp`, `nbf`, `iat`, `jti` and the granted `access` list; and
 * refresh tokens (what docker keeps as its "identity token" after
 * `docker login`), which name the subject and a fingerprint of their
 * password, so that a new password or a removed account voids them.
 *
 * Limitation: an access token is good until it expires (`expiration`, 5
 * minutes by default) even when the account is removed or the policy
 * changes meanwhile; and one refresh token cannot be revoked alone, only
 * all of an account's at once, by a new password or removing the account
 * (or, for a robot, revoking it).
 */

export interface TokenServiceOptions {
  issuer: string;
  /** The `aud` of access tokens, the `service` of challenges. */
  service: string;
  expirationMs: number;
  refreshExpirationMs: number;
  key: SigningKey;
}

export interface IssuedToken {
  token: string;
  /** Seconds. */
  expiresIn: number;
  /** RFC 3339. */
  issuedAt: string;
}

export interface RefreshClaims {
  subject: string;
  /** The password hash's fingerprint (users) or the robot id (robots) at issue time. */
  fingerprint: string;
}

/** Refresh tokens carry their own `typ`, so that one is never taken for an access token. */
const refreshType = 'berth-refresh+jwt';
const accessType = 'JWT';
/** Clocks of the machines of one registry may differ a little. */
const clockToleranceSeconds = 5;

export class TokenService {
  readonly options: TokenServiceOptions;

  constructor(options: TokenServiceOptions) {
    this.options = options;
  }

  /** An access token for the subject (empty when anonymous) with exactly this access. */
  async issueAccess(subject: string, access: ResourceAccess[]): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = Math.max(1, Math.floor(this.options.expirationMs / 1000));
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', typ: accessType, kid: this.options.key.keyId })
      .setIssuer(this.options.issuer)
      .setSubject(subject)
      .setAudience(this.options.service)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + expiresIn)
      .setJti(randomUUID())
      .sign(this.options.key.privateKey);
    return { token, expiresIn, issuedAt: new Date(now * 1000).toISOString() };
  }

  async issueRefresh(claims: RefreshClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ fp: claims.fingerprint })
      .setProtectedHeader({ alg: 'ES256', typ: refreshType, kid: this.options.key.keyId })
      .setIssuer(this.options.issuer)
      .setSubject(claims.subject)
      .setAudience(this.options.issuer)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + Math.floor(this.options.refreshExpirationMs / 1000))
      .setJti(randomUUID())
      .sign(this.options.key.privateKey);
  }

  /** The claims of a genuine, unexpired refresh token of this service; undefined otherwise. */
  async verifyRefresh(token: string): Promise<RefreshClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.options.key.publicKey, {
        algorithms: ['ES256'],
        typ: refreshType,
        issuer: this.options.issuer,
        audience: this.options.issuer,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: clockToleranceSeconds,
      });
      if (typeof payload.fp !== 'string' || payload.sub === undefined) return undefined;
      return { subject: payload.sub, fingerprint: payload.fp };
    } catch {
      return undefined;
    }
  }
}
