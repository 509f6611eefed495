import { join, resolve } from 'node:path';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { AccessControl, Challenge, Source } from './access-control.js';
import type { RobotStore } from './robots.js';
import { LoginThrottle } from './throttle.js';
import type { TokenService } from './token-service.js';
import type { TokenVerifier } from './token-verifier.js';
import { WatchedFile } from './watched-file.js';

// The modules of each method, and the libraries behind them (bcrypt, YAML,
// JOSE), are loaded only when the configuration uses the method: a registry
// without `auth`, the default, spares each serving thread a few MB of heap.

/** How often each serving thread looks whether the htpasswd or policy file changed. */
const fileCheckMs = 1_000;

/**
 * The registry's access control as the configuration's `auth` section
 * describes it, or undefined when the section sets no method: then every
 * request is allowed, as with Distribution. A bad htpasswd or policy file
 * stops the start; a later bad edit keeps the last good one in force.
 */
export async function openAccessControl(
  config: Config,
  robots: RobotStore,
  log: Logger,
): Promise<AccessControl | undefined> {
  const auth = config.auth;
  if (!auth.htpasswd && !auth.token) return undefined;

  const { AccessControl } = await import('./access-control.js');
  const { parseHtpasswd } = await import('./htpasswd.js');
  const { Policy } = await import('./policy.js');
  const accounts = auth.htpasswd
    ? await watch(auth.htpasswd.path, 'htpasswd', parseHtpasswd, log)
    : undefined;
  const policy = auth.policy
    ? await watch(
        auth.policy.path,
        'policy',
        (text) => Policy.parse(text, auth.policy?.path ?? ''),
        log,
      )
    : fixed(Policy.authenticatedMayDoAnything());
  const throttle = new LoginThrottle({
    slowAfter: auth.throttle.slowafter,
    blockAfter: auth.throttle.blockafter,
    windowMs: parseDuration(auth.throttle.window),
  });
  const { challenge, tokenService, verifier } = await tokenParts(config);
  const localTokens = tokenService !== undefined;
  return new AccessControl({
    challenge,
    accounts,
    policy,
    robots,
    throttle,
    tokenService,
    verifier,
    localTokens,
  });
}

async function tokenParts(config: Config): Promise<{
  challenge: Challenge;
  tokenService?: TokenService;
  verifier?: TokenVerifier;
}> {
  const { htpasswd, token, tokenservice } = config.auth;
  if (token) {
    const { externalVerifier } = await import('./token-verifier.js');
    const verifier = await externalVerifier({
      issuer: token.issuer,
      service: token.service,
      rootCertBundle: token.rootcertbundle,
      jwks: token.jwks,
    });
    const realm = token.autoredirect ? undefined : token.realm;
    return { challenge: { scheme: 'bearer', realm, service: token.service }, verifier };
  }
  if (!tokenservice?.enabled) {
    return { challenge: { scheme: 'basic', realm: htpasswd?.realm ?? 'berth' } };
  }

  const { loadOrCreateSigningKey } = await import('./signing-key.js');
  const { TokenService } = await import('./token-service.js');
  const { keyVerifier } = await import('./token-verifier.js');
  const root = resolve(config.storage.filesystem.rootdirectory);
  const key = await loadOrCreateSigningKey(
    tokenservice.signingkey ?? join(root, 'auth', 'token-signing-key.pem'),
  );
  const tokenService = new TokenService({
    issuer: tokenservice.issuer,
    service: tokenservice.service,
    expirationMs: parseDuration(tokenservice.expiration),
    refreshExpirationMs: parseDuration(tokenservice.refreshexpiration),
    key,
  });
  const verifier = keyVerifier(key.publicKey, {
    issuer: tokenservice.issuer,
    audience: tokenservice.service,
    algorithms: ['ES256'],
    typ: 'JWT',
  });
  const challenge: Challenge = {
    scheme: 'bearer',
    realm: tokenservice.realm,
    service: tokenservice.service,
  };
  return { challenge, tokenService, verifier };
}

async function watch<T>(
  path: string,
  what: string,
  parse: (text: string) => T,
  log: Logger,
): Promise<Source<T>> {
  const file = new WatchedFile(path, parse, {
    ttlMs: fileCheckMs,
    onError: (error) =>
      log.error(
        { file: path, err: (error as Error).message },
        `${what} file refused; the previous one stays in force`,
      ),
    onReload: () => log.info({ file: path }, `${what} file reloaded`),
  });
  try {
    await file.load();
  } catch (error) {
    throw new Error(`Cannot load the ${what} file "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  return file;
}

function fixed<T>(value: T): Source<T> {
  return { current: () => Promise.resolve(value) };
}
