import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { mintRobot } from '../../src/auth/robots.js';
import {
  authDirectory,
  basic,
  bearer,
  capturedLogger,
  htpasswdText,
  jwtClaims,
  testPolicy,
  testUsers,
  waitForFileCheck,
  writeFiles,
} from '../support/auth.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { errorCode, pushImage, request } from '../support/oci-client.js';

/**
 * Berth's token service and the Bearer tokens it signs: challenges, the
 * GET and OAuth2 POST forms, refresh tokens, the granted intersection, and
 * every kind of token that must be refused.
 */

const root = basic('root', testUsers.root);
let server: ApiServer;
let dir: string;
let signingKey: KeyObject;
const logs = capturedLogger();

before(async () => {
  dir = await authDirectory();
  await writeFiles(dir, { htpasswd: htpasswdText(testUsers), 'policy.yml': testPolicy });
  const auth = {
    htpasswd: { path: join(dir, 'htpasswd') },
    policy: { path: join(dir, 'policy.yml') },
    tokenservice: { enabled: true },
  };
  server = await startApiServer({ auth }, undefined, logs.log);
  const pem = await readFile(join(server.root, 'auth', 'token-signing-key.pem'), 'utf8');
  signingKey = createPrivateKey(pem);
  await pushImage(server.url, 'team-a/app', 'v1', {}, undefined, root);
  await pushImage(server.url, 'public/base', 'v1', {}, undefined, root);
  await pushImage(server.url, 'shared/tools', 'v1', {}, undefined, root);
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface TokenReply {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope: string;
}

async function getToken(scopes: string[], headers: Record<string, string> = {}, extra = '') {
  const query = scopes.map((scope) => `&scope=${encodeURIComponent(scope)}`).join('');
  return request(`${server.url}/auth/token?service=berth${query}${extra}`, { headers });
}

async function tokenFor(scopes: string[], headers: Record<string, string> = {}): Promise<string> {
  const reply = await getToken(scopes, headers);
  assert.equal(reply.status, 200, reply.body.toString());
  return reply.json<TokenReply>().token;
}

function postToken(form: Record<string, string>) {
  return request(`${server.url}/auth/token`, {
    method: 'POST',
    body: new URLSearchParams(form).toString(),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
}

function get(path: string, headers: Record<string, string> = {}) {
  return request(`${server.url}${path}`, { headers });
}

/** A token like the service's, with claims changed, signed with `key`. */
function forgeToken(claims: Record<string, unknown>, key: KeyObject = signingKey) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
    iss: 'berth',
    aud: 'berth',
    sub: 'alice',
    iat: now,
    nbf: now,
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .sign(key);
}

describe('auth token: challenges', () => {
  test('auth token: /v2/ without a token answers 401 with a Bearer challenge naming the realm', async () => {
    const reply = await get('/v2/');
    assert.equal(reply.status, 401);
    assert.equal(
      reply.headers.get('www-authenticate'),
      `Bearer realm="${server.url}/auth/token",service="berth"`,
    );
  });

  test('auth token: a repository request is challenged with its scope', async () => {
    const pull = await get('/v2/team-a/app/manifests/v1');
    assert.match(pull.headers.get('www-authenticate') ?? '', /scope="repository:team-a\/app:pull"/);
    const push = await request(`${server.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST' });
    assert.match(
      push.headers.get('www-authenticate') ?? '',
      /scope="repository:team-a\/app:pull,push"/,
    );
    const catalog = await get('/v2/_catalog');
    assert.equal(catalog.status, 200, 'anonymous rules let anonymous callers list');
  });
});

describe('auth token: issuing', () => {
  test('auth token: an anonymous token grants only what anonymous callers may do', async () => {
    const token = await tokenFor([
      'repository:public/base:pull,push',
      'repository:team-a/app:pull',
    ]);
    const claims = jwtClaims(token);
    assert.equal(claims.sub, '');
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'public/base', actions: ['pull'] },
    ]);
  });

  test('auth token: a token carries iss, sub, aud, exp, nbf, iat, jti and the intersection', async () => {
    const reply = await getToken(
      ['repository:team-a/app:pull,push,delete', 'repository:private/secret:pull'],
      basic('alice', testUsers.alice),
    );
    assert.equal(reply.status, 200);
    const body = reply.json<TokenReply>();
    assert.equal(body.access_token, body.token);
    assert.equal(body.expires_in, 300);
    assert.equal(reply.headers.get('cache-control'), 'no-store');
    const claims = jwtClaims(body.token);
    assert.equal(claims.iss, 'berth');
    assert.equal(claims.aud, 'berth');
    assert.equal(claims.sub, 'alice');
    for (const claim of ['exp', 'nbf', 'iat', 'jti']) assert.ok(claims[claim], claim);
    assert.equal(Number(claims.exp) - Number(claims.iat), 300);
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] },
    ]);
  });

  test('auth token: a wrong password at the token endpoint answers 401', async () => {
    const reply = await getToken(['repository:team-a/app:pull'], basic('alice', 'nope'));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'UNAUTHORIZED');
  });

  test('auth token: a token for another service is refused with 400', async () => {
    const reply = await request(`${server.url}/auth/token?service=elsewhere`);
    assert.equal(reply.status, 400);
  });

  test('auth token: the OAuth2 password grant returns a refresh token for offline access', async () => {
    const reply = await postToken({
      grant_type: 'password',
      username: 'alice',
      password: testUsers.alice,
      service: 'berth',
      scope: 'repository:team-a/app:pull repository:public/base:push',
      access_type: 'offline',
      client_id: 'docker',
    });
    assert.equal(reply.status, 200, reply.body.toString());
    const body = reply.json<TokenReply>();
    assert.ok(body.refresh_token);
    assert.equal(body.scope, 'repository:team-a/app:pull repository:public/base:push');
    const wrong = await postToken({ grant_type: 'password', username: 'alice', password: 'x' });
    assert.equal(wrong.status, 401);
    const unknown = await postToken({ grant_type: 'client_credentials' });
    assert.equal(unknown.status, 400);
  });

  test('auth token: a refresh token buys access tokens until the password changes', async () => {
    const first = await getToken(
      ['repository:team-a/app:pull'],
      basic('alice', testUsers.alice),
      '&offline_token=true',
    );
    const refresh = first.json<TokenReply>().refresh_token ?? '';
    assert.ok(refresh);
    const renewed = await postToken({
      grant_type: 'refresh_token',
      refresh_token: refresh,
      service: 'berth',
      scope: 'repository:team-a/app:pull',
    });
    assert.equal(renewed.status, 200);
    const token = renewed.json<TokenReply>().access_token;
    assert.equal((await get('/v2/team-a/app/manifests/v1', bearer(token))).status, 200);

    await writeFile(join(dir, 'htpasswd'), htpasswdText({ ...testUsers, alice: 'new-pw' }));
    await waitForFileCheck();
    const refused = await postToken({ grant_type: 'refresh_token', refresh_token: refresh });
    assert.equal(refused.status, 401);
    await writeFile(join(dir, 'htpasswd'), htpasswdText(testUsers));
    await waitForFileCheck();
  });

  test('auth token: a robot logs in at the token endpoint within its scopes', async () => {
    const { record, token } = mintRobot(
      'builder',
      ['repository:team-a/*:pull'],
      Date.now() + 60_000,
    );
    await server.registry.metadata.createRobot(record);
    const access = await tokenFor(
      ['repository:team-a/app:pull,push', 'repository:public/base:pull'],
      basic('builder', token),
    );
    const claims = jwtClaims(access);
    assert.equal(claims.sub, 'robot:builder');
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'team-a/app', actions: ['pull'] },
    ]);
  });
});

describe('auth token: using tokens', () => {
  test('auth token: a token allows what it grants and no more', async () => {
    const token = await tokenFor(['repository:team-a/app:pull'], basic('alice', testUsers.alice));
    assert.equal((await get('/v2/', bearer(token))).status, 200);
    assert.equal((await get('/v2/team-a/app/manifests/v1', bearer(token))).status, 200);
    const push = await request(`${server.url}/v2/team-a/app/blobs/uploads/`, {
      method: 'POST',
      headers: bearer(token),
    });
    assert.equal(push.status, 401);
    const challenge = push.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /error="insufficient_scope"/);
    assert.match(challenge, /scope="repository:team-a\/app:pull,push"/);
  });

  test('auth token: Basic credentials are accepted on /v2/ beside tokens', async () => {
    assert.equal(
      (await get('/v2/team-a/app/tags/list', basic('alice', testUsers.alice))).status,
      200,
    );
  });

  test('auth token: the catalog needs the catalog scope and lists what the subject may pull', async () => {
    const without = await tokenFor(['repository:shared/tools:pull'], basic('bob', testUsers.bob));
    const refused = await get('/v2/_catalog', bearer(without));
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /scope="registry:catalog:\*"/);

    const token = await tokenFor(['registry:catalog:*'], basic('bob', testUsers.bob));
    const reply = await get('/v2/_catalog', bearer(token));
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json<{ repositories: string[] }>().repositories, [
      'public/base',
      'shared/tools',
    ]);
  });

  test('auth token: a refresh token is not an access token', async () => {
    const reply = await getToken([], basic('alice', testUsers.alice), '&offline_token=true');
    const refresh = reply.json<TokenReply>().refresh_token ?? '';
    const refused = await get('/v2/', bearer(refresh));
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });
});

describe('auth token: refused tokens', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const cases: [string, () => Promise<string>][] = [
    ['expired', () => forgeToken({ exp: now() - 60, iat: now() - 400, nbf: now() - 400 })],
    ['not yet valid', () => forgeToken({ nbf: now() + 3600 })],
    ['for another audience', () => forgeToken({ aud: 'other-registry' })],
    ['from another issuer', () => forgeToken({ iss: 'someone-else' })],
    ['signed with another key', () => forgeToken({}, otherKey)],
    [
      'unsigned (alg none)',
      () =>
        Promise.resolve(
          new UnsecuredJWT({
            access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
          })
            .setIssuer('berth')
            .setAudience('berth')
            .setSubject('alice')
            .setExpirationTime('5m')
            .encode(),
        ),
    ],
    [
      'tampered after signing',
      async () => {
        const token = await forgeToken({});
        const [header, , signature] = token.split('.');
        const access = [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }];
        const payload = Buffer.from(JSON.stringify({ ...jwtClaims(token), access })).toString(
          'base64url',
        );
        return `${header}.${payload}.${signature}`;
      },
    ],
    ['garbage', () => Promise.resolve('not.a.token')],
  ];

  test('auth token: a well-formed forged token of the right key is accepted (control)', async () => {
    const reply = await get('/v2/team-a/app/manifests/v1', bearer(await forgeToken({})));
    assert.equal(reply.status, 200);
  });

  for (const [name, make] of cases) {
    test(`auth token: a token ${name} answers 401 invalid_token`, async () => {
      const reply = await get('/v2/team-a/app/manifests/v1', bearer(await make()));
      assert.equal(reply.status, 401);
      assert.equal(errorCode(reply), 'UNAUTHORIZED');
      assert.match(reply.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    });
  }
});

describe('auth token: signing key', () => {
  test('auth token: the signing key is kept in the data directory, readable by its owner only', async () => {
    const info = await stat(join(server.root, 'auth', 'token-signing-key.pem'));
    assert.equal(info.mode & 0o777, 0o600);
  });

  test('auth token: tokens stay valid across a restart on the same data directory', async () => {
    const token = await tokenFor(['repository:team-a/app:pull'], basic('alice', testUsers.alice));
    const auth = {
      htpasswd: { path: join(dir, 'htpasswd') },
      policy: { path: join(dir, 'policy.yml') },
      tokenservice: { enabled: true },
    };
    const second = await startApiServer(
      { auth, metadata: { sqlite: { path: join(dir, 'second.db') } } },
      server.root,
    );
    try {
      const reply = await request(`${second.url}/v2/`, { headers: bearer(token) });
      assert.equal(reply.status, 200);
    } finally {
      await second.close(true);
    }
  });

  test('auth token: decisions and issued tokens are logged without the token', async () => {
    const token = await tokenFor(['repository:team-a/app:pull'], basic('alice', testUsers.alice));
    await get('/v2/team-a/app/tags/list', bearer(token));
    const issued = logs.lines.filter((line) => line.action === 'token' && line.result === 'issued');
    assert.ok(issued.length > 0);
    assert.ok(!logs.text().includes(token.split('.')[2] ?? 'x'), 'the log holds a token');
  });
});
