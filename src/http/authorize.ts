import type { TLSSocket } from 'node:tls';
import type { AccessControl, Challenge, Credentials } from '../auth/access-control.js';
import { catalogAccess, formatScope, type RepositoryAction } from '../auth/access.js';
import type { Caller } from '../auth/caller.js';
import { RegistryError } from '../errors/registry-error.js';
import type { RequestContext } from './context.js';
import type { Route } from './router.js';

/**
 * Access control at the HTTP boundary: which access a route and method
 * need, the caller behind the request's credentials, and the answer when
 * the caller lacks it (Docker token specification, "How to authenticate"):
 *
 * - no or wrong credentials: 401 UNAUTHORIZED with a challenge,
 *   `WWW-Authenticate: Basic realm=...` or `Bearer realm=...,service=...,
 *   scope=...`, which tells the client where to log in and for what;
 * - a Bearer token without the access: 401 with `error="insufficient_scope"`,
 *   so that the client asks the token service for a token that has it;
 * - a user or robot without the permission: 403 DENIED;
 * - an address with too many failed logins: 429 TOOMANYREQUESTS.
 *
 * Every decision is logged at info, with user, action, repository, result.
 */

export type NeededAccess =
  | { kind: 'login' }
  | { kind: 'catalog' }
  /** The administrative endpoints, `/admin/v1/`: the policy's administrators. */
  | { kind: 'admin' }
  | { kind: 'repository'; name: string; action: RepositoryAction };

/** The access a request needs: the one table of route and method to action. */
export function neededAccess(route: Route, method: string | undefined): NeededAccess | undefined {
  switch (route.kind) {
    case 'token':
      return undefined;
    case 'base':
      return { kind: 'login' };
    case 'admin':
      return { kind: 'admin' };
    case 'catalog':
      return { kind: 'catalog' };
    case 'usage':
      return route.name === undefined
        ? { kind: 'catalog' }
        : { kind: 'repository', name: route.name, action: 'pull' };
    case 'tags':
    case 'referrers':
      return { kind: 'repository', name: route.name, action: 'pull' };
    case 'uploads':
    case 'upload':
      return { kind: 'repository', name: route.name, action: 'push' };
    case 'manifest':
    case 'blob':
      return { kind: 'repository', name: route.name, action: actionOf(method) };
  }
}

function actionOf(method: string | undefined): RepositoryAction {
  if (method === 'PUT' || method === 'POST' || method === 'PATCH') return 'push';
  if (method === 'DELETE') return 'delete';
  return 'pull';
}

/**
 * Lets the request through, with `ctx.caller` and `ctx.user` set, or throws
 * the error to answer with. Does nothing when access control is off.
 */
export async function authorizeRequest(ctx: RequestContext, route: Route): Promise<void> {
  const auth = ctx.options.auth;
  const needed = neededAccess(route, ctx.req.method);
  if (!auth || !needed) return;

  const caller = await authenticateRequest(ctx, auth, actionName(needed), nameOf(needed));
  ctx.caller = caller;
  ctx.user = caller.name;
  if (isAllowed(caller, needed)) {
    logDecision(ctx, actionName(needed), nameOf(needed), 'allowed');
    return;
  }

  logDecision(ctx, actionName(needed), nameOf(needed), 'denied');
  if (caller.scheme === 'basic') {
    throw new RegistryError('DENIED', deniedMessage(needed), { detail: detailOf(needed) });
  }
  const error = caller.scheme === 'bearer' ? 'insufficient_scope' : undefined;
  throw unauthorized(ctx, auth.challenge, needed, error);
}

/** The caller, or the 401 or 429 to answer with; failed logins are logged here. */
export async function authenticateRequest(
  ctx: RequestContext,
  auth: AccessControl,
  action: string,
  repository: string | undefined,
): Promise<Caller> {
  const credentials = parseAuthorization(ctx.req.headers.authorization);
  if (credentials === 'malformed') {
    logDecision(ctx, action, repository, 'refused', 'malformed Authorization header');
    throw unauthorized(ctx, auth.challenge, undefined, 'invalid_request');
  }
  const result = await auth.authenticate(credentials, remoteAddress(ctx));
  if (result.ok) return result.caller;

  const user = credentials?.scheme === 'basic' ? credentials.username : undefined;
  if (user !== undefined) ctx.user = user;
  if (result.retryAfterSeconds !== undefined) {
    logDecision(ctx, action, repository, 'throttled', result.reason);
    throw tooManyFailures(result.retryAfterSeconds);
  }
  logDecision(ctx, action, repository, 'refused', result.reason);
  const error = credentials?.scheme === 'bearer' ? 'invalid_token' : undefined;
  throw unauthorized(ctx, auth.challenge, undefined, error);
}

/**
 * `GET /v2/` asks for a login: clients read its 401 to learn how to log in,
 * and `docker login` takes a 200 there as success without checking.
 *
 * Limitation: with Basic authentication only, docker stops at that 401 when
 * it has no credentials ("no basic auth credentials"), so anonymous pulls
 * the policy allows work for curl and skopeo but not for docker; with
 * `auth.tokenservice` docker fetches an anonymous token and pulls.
 */
function isAllowed(caller: Caller, needed: NeededAccess): boolean {
  if (needed.kind === 'login') return caller.kind !== 'anonymous';
  if (needed.kind === 'catalog') return caller.mayListCatalog;
  if (needed.kind === 'admin') return caller.isAdmin;
  return caller.actionsOn(needed.name).has(needed.action);
}

/** `Basic` or `Bearer` credentials; undefined when there are none (or they are empty). */
export function parseAuthorization(
  header: string | undefined,
): Credentials | undefined | 'malformed' {
  if (header === undefined || header === '') return undefined;
  const space = header.indexOf(' ');
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (space <= 0 || value === '') return 'malformed';
  if (scheme === 'bearer') return { scheme: 'bearer', token: value };
  if (scheme !== 'basic') return 'malformed';
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  // Empty credentials are how skopeo and podman ask anonymously after a Basic challenge.
  if (decoded === ':') return undefined;
  return { scheme: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function remoteAddress(ctx: RequestContext): string {
  return ctx.req.socket.remoteAddress ?? 'unknown';
}

export function unauthorized(
  ctx: RequestContext,
  challenge: Challenge,
  needed: NeededAccess | undefined,
  error?: string,
): RegistryError {
  return new RegistryError('UNAUTHORIZED', 'Authentication required', {
    detail: needed ? detailOf(needed) : null,
    headers: { 'WWW-Authenticate': challengeHeader(ctx, challenge, needed, error) },
  });
}

export function tooManyFailures(retryAfterSeconds: number): RegistryError {
  return new RegistryError(
    'TOOMANYREQUESTS',
    `Too many failed logins from this address: try again in ${retryAfterSeconds} s`,
    { headers: { 'Retry-After': String(retryAfterSeconds) } },
  );
}

/** The `WWW-Authenticate` value (RFC 6750, section 3, and the Docker token specification). */
function challengeHeader(
  ctx: RequestContext,
  challenge: Challenge,
  needed: NeededAccess | undefined,
  error: string | undefined,
): string {
  if (challenge.scheme === 'basic') return `Basic realm=${quote(challenge.realm)}`;
  const parts = [
    `realm=${quote(challenge.realm ?? tokenEndpointOf(ctx))}`,
    `service=${quote(challenge.service)}`,
  ];
  const scope = needed ? scopeOf(needed) : undefined;
  if (scope !== undefined) parts.push(`scope=${quote(scope)}`);
  if (error !== undefined) parts.push(`error=${quote(error)}`);
  return `Bearer ${parts.join(',')}`;
}

/** Berth's token endpoint on the host the client used, or under `http.host`. */
export function tokenEndpointOf(ctx: RequestContext): string {
  if (ctx.options.baseUrl) return `${ctx.options.baseUrl}/auth/token`;
  const encrypted = (ctx.req.socket as Partial<TLSSocket>).encrypted === true;
  const host = ctx.req.headers.host ?? ctx.req.headers[':authority'] ?? 'localhost';
  return `${encrypted ? 'https' : 'http'}://${String(host)}/auth/token`;
}

/** Pushes ask for `pull,push`, as Distribution's challenges do: clients reuse the token. */
function scopeOf(needed: NeededAccess): string | undefined {
  if (needed.kind === 'login' || needed.kind === 'admin') return undefined;
  if (needed.kind === 'catalog') return formatScope(catalogAccess);
  const actions = needed.action === 'push' ? ['pull', 'push'] : [needed.action];
  return formatScope({ type: 'repository', name: needed.name, actions });
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function detailOf(needed: NeededAccess) {
  if (needed.kind === 'login' || needed.kind === 'admin') return null;
  if (needed.kind === 'catalog') return [{ Type: 'registry', Name: 'catalog', Action: '*' }];
  return [{ Type: 'repository', Name: needed.name, Action: needed.action }];
}

function deniedMessage(needed: NeededAccess): string {
  if (needed.kind === 'repository') {
    return `Requested access to the resource is denied: ${needed.action} on "${needed.name}"`;
  }
  return 'Requested access to the resource is denied';
}

function actionName(needed: NeededAccess): string {
  return needed.kind === 'repository' ? needed.action : needed.kind;
}

function nameOf(needed: NeededAccess): string | undefined {
  return needed.kind === 'repository' ? needed.name : undefined;
}

/** One line per authentication or authorization decision (STYLE.md: never a credential). */
export function logDecision(
  ctx: RequestContext,
  action: string,
  repository: string | undefined,
  result: 'allowed' | 'denied' | 'refused' | 'throttled',
  reason?: string,
): void {
  ctx.log.info(
    {
      user: ctx.user ?? null,
      action,
      repository,
      result,
      reason,
      address: ctx.req.socket.remoteAddress,
    },
    'access',
  );
}
