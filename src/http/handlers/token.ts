import type { AccessControl, Authentication } from '../../auth/access-control.js';
import { formatScope, parseScopes, type ResourceAccess } from '../../auth/access.js';
import { grantAccess, type Caller } from '../../auth/caller.js';
import type { TokenService } from '../../auth/token-service.js';
import { RegistryError } from '../../errors/registry-error.js';
import { authenticateRequest, logDecision, remoteAddress, tooManyFailures } from '../authorize.js';
import type { RequestContext } from '../context.js';
import { readLimitedBody } from '../request-body.js';
import { sendJson } from '../respond.js';
import { methodNotAllowed } from './guards.js';

/**
 * Berth's token endpoint, `/auth/token` (Docker token specification):
 *
 * - `GET ?service=&scope=&offline_token=` with Basic credentials, or none
 *   for an anonymous token ("Requesting a Token");
 * - `POST` of an OAuth2 form, `grant_type=password` (`username`,
 *   `password`) or `grant_type=refresh_token` ("OAuth2 Token").
 *
 * The token grants the intersection of the scopes asked and what the caller
 * may do; it never fails for lack of permission. A refresh token is issued
 * on `offline_token=true` (GET) or `access_type=offline` (POST); docker
 * keeps it as its identity token after `docker login`.
 */

const maxFormBytes = 64 * 1024;

export async function handleToken(ctx: RequestContext) {
  const auth = ctx.options.auth;
  const service = auth?.tokenService;
  if (!auth || !service) {
    throw new RegistryError(
      'UNSUPPORTED',
      'The token service is not enabled: set auth.tokenservice.enabled to true',
      { status: 404 },
    );
  }
  if (ctx.req.method === 'GET') return getToken(ctx, auth, service);
  if (ctx.req.method === 'POST') return postToken(ctx, auth, service);
  throw methodNotAllowed(ctx);
}

async function getToken(ctx: RequestContext, auth: AccessControl, service: TokenService) {
  requireService(ctx.query.get('service'), service);
  const scopes = parseScopes(ctx.query.getAll('scope'));
  const caller = await authenticateRequest(ctx, auth, 'token', undefined);
  ctx.user = caller.name;
  // A refresh token only for a password: never in exchange for a short-lived token.
  const offline = ctx.query.get('offline_token') === 'true' && caller.scheme === 'basic';
  const body = await issue(ctx, auth, service, caller, scopes, offline);
  ctx.bytesOut = sendJson(ctx.res, 200, body, noStore);
}

async function postToken(ctx: RequestContext, auth: AccessControl, service: TokenService) {
  const form = new URLSearchParams((await readLimitedBody(ctx.req, maxFormBytes)).toString('utf8'));
  requireService(form.get('service'), service);
  const scopes = parseScopes(form.getAll('scope'));
  const grantType = form.get('grant_type');
  if (grantType !== 'password' && grantType !== 'refresh_token') {
    throw new RegistryError(
      'UNSUPPORTED',
      `Unsupported grant_type "${grantType ?? ''}": expected password or refresh_token`,
      { status: 400 },
    );
  }
  ctx.user = form.get('username') ?? undefined;
  const result =
    grantType === 'password'
      ? await auth.authenticatePassword(
          form.get('username') ?? '',
          form.get('password') ?? '',
          remoteAddress(ctx),
        )
      : await auth.authenticateRefresh(form.get('refresh_token') ?? '');
  const caller = requireCaller(ctx, result);
  ctx.user = caller.name;
  const offline = grantType === 'password' && form.get('access_type') === 'offline';
  const body = await issue(ctx, auth, service, caller, scopes, offline);
  ctx.bytesOut = sendJson(ctx.res, 200, body, noStore);
}

/** Token responses must not be cached (RFC 6749, section 5.1). */
const noStore = { 'Cache-Control': 'no-store' };

function requireCaller(ctx: RequestContext, result: Authentication): Caller {
  if (result.ok) return result.caller;
  if (result.retryAfterSeconds !== undefined) {
    logDecision(ctx, 'token', undefined, 'throttled', result.reason);
    throw tooManyFailures(result.retryAfterSeconds);
  }
  logDecision(ctx, 'token', undefined, 'refused', result.reason);
  throw new RegistryError('UNAUTHORIZED', 'Wrong user name, password or refresh token');
}

function requireService(asked: string | null, service: TokenService) {
  if (asked === null || asked === service.options.service) return;
  throw new RegistryError(
    'UNSUPPORTED',
    `Unknown service "${asked.slice(0, 200)}": this token service serves "${service.options.service}"`,
    { status: 400 },
  );
}

async function issue(
  ctx: RequestContext,
  auth: AccessControl,
  service: TokenService,
  caller: Caller,
  scopes: ResourceAccess[],
  offline: boolean,
) {
  const access = grantAccess(caller, scopes);
  const issued = await service.issueAccess(caller.name ?? '', access);
  const granted = access.map(formatScope).join(' ');
  ctx.log.info(
    {
      user: caller.name ?? null,
      action: 'token',
      asked: scopes.map(formatScope).join(' '),
      granted,
      result: 'issued',
    },
    'access',
  );
  const body: Record<string, unknown> = {
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresIn,
    issued_at: issued.issuedAt,
    scope: granted,
  };
  const subject = caller.name;
  const fingerprint = subject === undefined ? undefined : await auth.fingerprintOf(subject);
  if (offline && subject !== undefined && fingerprint !== undefined) {
    body.refresh_token = await service.issueRefresh({ subject, fingerprint });
  }
  return body;
}
