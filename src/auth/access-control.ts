import { setTimeout as sleep } from 'node:timers/promises';
import type { RepositoryAction } from './access.js';
import { callerFromAccess, type Caller } from './caller.js';
import { hashFingerprint, PasswordChecker, type HtpasswdEntries } from './htpasswd.js';
import type { Policy } from './policy.js';
import {
  isRobotToken,
  robotActionsOn,
  robotMayListCatalog,
  robotSubject,
  verifyRobotToken,
  type RobotRecord,
  type RobotStore,
} from './robots.js';
import type { LoginThrottle } from './throttle.js';
import type { TokenService } from './token-service.js';
import type { TokenVerifier } from './token-verifier.js';

/**
 * Authentication for the whole registry: turns the credentials of a request
 * into a `Caller` that knows what it may do. Three modes, as Distribution's
 * `auth` section has them:
 *
 * - `basic`: htpasswd accounts (and robot tokens) in Basic credentials,
 *   challenged with `WWW-Authenticate: Basic`;
 * - `token` with Berth's own token service: the same accounts log in at the
 *   token endpoint, and requests carry the service's Bearer tokens (Basic
 *   credentials are taken too);
 * - `token` with an external token service: Bearer tokens it signed.
 *
 * The htpasswd file and the policy are read through `current()` on every
 * use, so that their changes take effect without a restart.
 */

export type Credentials =
  { scheme: 'basic'; username: string; password: string } | { scheme: 'bearer'; token: string };

export type Authentication =
  { ok: true; caller: Caller } | { ok: false; reason: string; retryAfterSeconds?: number };

export type Challenge =
  | { scheme: 'basic'; realm: string }
  /** `realm` undefined: the registry's own token endpoint, on the host the client used. */
  | { scheme: 'bearer'; realm: string | undefined; service: string };

export interface Source<T> {
  current(): Promise<T>;
}

export interface AccessControlParts {
  challenge: Challenge;
  accounts?: Source<HtpasswdEntries> | undefined;
  policy: Source<Policy>;
  robots: RobotStore;
  throttle: LoginThrottle;
  /** Berth's token service, when enabled. */
  tokenService?: TokenService | undefined;
  /** Verifies Bearer tokens: Berth's own or an external service's. */
  verifier?: TokenVerifier | undefined;
  /** True when the verified tokens are Berth's own, whose subjects name local accounts. */
  localTokens: boolean;
}

export class AccessControl {
  readonly challenge: Challenge;
  readonly tokenService: TokenService | undefined;
  readonly #parts: AccessControlParts;
  readonly #passwords = new PasswordChecker();

  constructor(parts: AccessControlParts) {
    this.#parts = parts;
    this.challenge = parts.challenge;
    this.tokenService = parts.tokenService;
  }

  /** The caller behind a request's credentials; anonymous when there are none. */
  async authenticate(
    credentials: Credentials | undefined,
    address: string,
  ): Promise<Authentication> {
    if (credentials === undefined) return { ok: true, caller: await this.anonymous() };
    if (credentials.scheme === 'bearer')
      return this.#authenticateBearer(credentials.token, address);
    return this.authenticatePassword(credentials.username, credentials.password, address);
  }

  /**
   * A user name and password (or robot token), throttled per address:
   * refused outright while the address is blocked, checked after a pause
   * once it failed often.
   */
  async authenticatePassword(
    username: string,
    password: string,
    address: string,
  ): Promise<Authentication> {
    const { throttle } = this.#parts;
    const verdict = throttle.check(address);
    if (verdict.blocked) {
      return {
        ok: false,
        reason: 'too many failed logins',
        retryAfterSeconds: verdict.retryAfterSeconds,
      };
    }
    if (verdict.delayMs > 0) await sleep(verdict.delayMs);

    const caller = isRobotToken(password)
      ? await this.#robotByToken(password, username)
      : await this.#userByPassword(username, password);
    if (caller === undefined) {
      throttle.fail(address);
      return { ok: false, reason: 'wrong user name or password' };
    }
    throttle.succeed(address);
    return { ok: true, caller: { ...caller, scheme: 'basic' } };
  }

  /**
   * The caller a refresh token of Berth's token service stands for, when the
   * account still exists with the same password (robots: the same id).
   */
  async authenticateRefresh(token: string): Promise<Authentication> {
    const claims = await this.tokenService?.verifyRefresh(token);
    if (!claims) return { ok: false, reason: 'refresh token invalid or expired' };
    const caller = await this.callerForSubject(claims.subject);
    const fingerprint = await this.fingerprintOf(claims.subject);
    if (!caller || fingerprint === undefined || fingerprint !== claims.fingerprint) {
      return { ok: false, reason: 'refresh token no longer valid for its account' };
    }
    return { ok: true, caller };
  }

  /** What a refresh token for this subject must carry; undefined for an unknown subject. */
  async fingerprintOf(subject: string): Promise<string | undefined> {
    const robot = await this.#robotBySubject(subject);
    if (robot) return robot.id;
    const hash = (await this.#parts.accounts?.current())?.get(subject);
    return hash === undefined ? undefined : hashFingerprint(hash);
  }

  async anonymous(): Promise<Caller> {
    const policy = await this.#parts.policy.current();
    const actionsOn = (repository: string) => policy.actionsFor(undefined, repository);
    return {
      kind: 'anonymous',
      name: undefined,
      scheme: 'none',
      actionsOn,
      mayListCatalog: policy.allowsAnonymous(),
      isAdmin: false,
      catalogFilter: () => Promise.resolve(canPull(actionsOn)),
    };
  }

  /** The caller a subject of Berth's tokens names: a user, `robot:NAME`, or '' (anonymous). */
  async callerForSubject(subject: string): Promise<Caller | undefined> {
    if (subject === '') return this.anonymous();
    const robot = await this.#robotBySubject(subject);
    if (robot) return robotCaller(robot);
    const accounts = await this.#parts.accounts?.current();
    if (!accounts?.has(subject)) return undefined;
    return this.#userCaller(subject);
  }

  async #userByPassword(username: string, password: string): Promise<Caller | undefined> {
    const accounts = await this.#parts.accounts?.current();
    const hash = accounts?.get(username);
    if (!(await this.#passwords.check(username, password, hash))) return undefined;
    return this.#userCaller(username);
  }

  async #userCaller(user: string): Promise<Caller> {
    const policy = await this.#parts.policy.current();
    const actionsOn = (repository: string) => policy.actionsFor(user, repository);
    return {
      kind: 'user',
      name: user,
      scheme: 'basic',
      actionsOn,
      mayListCatalog: true,
      isAdmin: policy.isAdmin(user),
      catalogFilter: () => Promise.resolve(canPull(actionsOn)),
    };
  }

  /** A robot token in Basic credentials: the user name, when given, must be the robot's. */
  async #robotByToken(token: string, username: string): Promise<Caller | undefined> {
    const robot = await verifyRobotToken(this.#parts.robots, token);
    if (!robot) return undefined;
    if (username !== '' && username !== robot.name && username !== robotSubject(robot.name)) {
      return undefined;
    }
    return robotCaller(robot);
  }

  async #robotBySubject(subject: string): Promise<RobotRecord | undefined> {
    if (!subject.startsWith('robot:')) return undefined;
    const robot = await this.#parts.robots.getRobotByName(subject.slice('robot:'.length));
    return robot && robot.expiresAt > Date.now() ? robot : undefined;
  }

  async #authenticateBearer(token: string, address: string): Promise<Authentication> {
    if (isRobotToken(token)) return this.authenticatePassword('', token, address);
    const verifier = this.#parts.verifier;
    if (!verifier) return { ok: false, reason: 'Bearer tokens are not accepted here' };
    const verification = await verifier.verify(token);
    if (!verification.ok) return { ok: false, reason: verification.reason };

    const { subject, access } = verification.token;
    const catalogFilter = this.#parts.localTokens
      ? () => this.#subjectCatalogFilter(subject)
      : () => Promise.resolve(() => true);
    return { ok: true, caller: callerFromAccess(subject, access, catalogFilter) };
  }

  /** Berth's tokens name a local subject, whose current rights filter the catalog. */
  async #subjectCatalogFilter(subject: string): Promise<(repository: string) => boolean> {
    const caller = await this.callerForSubject(subject);
    return caller ? caller.catalogFilter() : () => false;
  }
}

function robotCaller(robot: RobotRecord): Caller {
  const actionsOn = (repository: string) => robotActionsOn(robot, repository);
  return {
    kind: 'robot',
    name: robotSubject(robot.name),
    scheme: 'basic',
    actionsOn,
    mayListCatalog: robotMayListCatalog(robot),
    isAdmin: false,
    catalogFilter: () => Promise.resolve(canPull(actionsOn)),
  };
}

function canPull(actionsOn: (repository: string) => ReadonlySet<RepositoryAction>) {
  return (repository: string) => actionsOn(repository).has('pull');
}
