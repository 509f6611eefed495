import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { exportJWK, SignJWT, UnsecuredJWT } from 'jose';
import { authDirectory, bearer, testPolicy, writeFiles } from '../support/auth.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { errorCode, pushImage, request } from '../support/oci-client.js';

/**
 * Berth behind an external token service (`auth.token`): tokens signed by
 * a key of the certificate bundle or of a JWKS are taken at their `access`
 * claim; any other token is refused; challenges name the external realm.
 */

const realm = 'https://id.example.com/token';
let dir: string;
let bundleKey: KeyObject;
const jwksKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const strangerKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

before(async () => {
  dir = await authDirectory();
  // prettier-ignore
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', join(dir, 'issuer.key'), '-out', join(dir, 'bundle.pem'), '-days', '2', '-subj', '/CN=issuer']);
  bundleKey = createPrivateKey(await readFile(join(dir, 'issuer.key')));
  const jwk = { ...(await exportJWK(jwksKey)), kid: 'key-1', alg: 'ES256' };
  delete jwk.d;
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  await writeFiles(dir, { 'policy.yml': testPolicy });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Access = { type: string; name: string; actions: string[] }[];

function sign(
  access: Access,
  options: { key?: KeyObject; alg?: string; kid?: string; claims?: object } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: options.alg ?? 'RS256', ...(options.kid ? { kid: options.kid } : {}) };
  const claims = {
    iss: 'idp',
    aud: 'registry.test',
    sub: 'ci-user',
    iat: now,
    nbf: now,
    exp: now + 120,
    ...options.claims,
  };
  return new SignJWT({ access, ...claims })
    .setProtectedHeader(header)
    .sign(options.key ?? bundleKey);
}

const pushApp: Access = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }];
const pullApp: Access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];

describe('auth external: certificate bundle', () => {
  let server: ApiServer;
  before(async () => {
    const token = {
      realm,
      service: 'registry.test',
      issuer: 'idp',
      rootcertbundle: join(dir, 'bundle.pem'),
    };
    server = await startApiServer({ auth: { token } });
    await pushImage(server.url, 'team/app', 'v1', {}, undefined, bearer(await sign(pushApp)));
  });
  after(() => server.close());

  const get = (path: string, token: string) =>
    request(`${server.url}${path}`, { headers: bearer(token) });

  test('auth external: challenges name the external realm and service', async () => {
    const reply = await request(`${server.url}/v2/team/app/manifests/v1`);
    assert.equal(reply.status, 401);
    assert.equal(
      reply.headers.get('www-authenticate'),
      `Bearer realm="${realm}",service="registry.test",scope="repository:team/app:pull"`,
    );
  });

  test('auth external: a token of the bundle key is taken at its access claim', async () => {
    const token = await sign(pullApp);
    assert.equal((await get('/v2/team/app/manifests/v1', token)).status, 200);
    assert.equal((await get('/v2/other/app/tags/list', token)).status, 401);
    const push = await request(`${server.url}/v2/team/app/blobs/uploads/`, {
      method: 'POST',
      headers: bearer(token),
    });
    assert.equal(push.status, 401);
    assert.match(push.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
  });

  test('auth external: the catalog needs registry:catalog:* and then lists everything', async () => {
    assert.equal((await get('/v2/_catalog', await sign(pullApp))).status, 401);
    const catalog = await sign([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    const reply = await get('/v2/_catalog', catalog);
    assert.deepEqual(reply.json<{ repositories: string[] }>().repositories, ['team/app']);
  });

  const refused: [string, () => Promise<string>][] = [
    ['signed by a key outside the bundle', () => sign(pullApp, { key: strangerKey })],
    ['for another audience', () => sign(pullApp, { claims: { aud: 'other' } })],
    ['from another issuer', () => sign(pullApp, { claims: { iss: 'evil' } })],
    ['expired', () => sign(pullApp, { claims: { exp: Math.floor(Date.now() / 1000) - 60 } })],
    [
      'not yet valid',
      () => sign(pullApp, { claims: { nbf: Math.floor(Date.now() / 1000) + 600 } }),
    ],
    [
      'with alg none',
      () =>
        Promise.resolve(
          new UnsecuredJWT({ access: pullApp })
            .setIssuer('idp')
            .setAudience('registry.test')
            .setExpirationTime('2m')
            .encode(),
        ),
    ],
    [
      'HMAC-signed with the public certificate as the secret',
      async () => {
        const secret = await readFile(join(dir, 'bundle.pem'));
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ access: pullApp })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('idp')
          .setAudience('registry.test')
          .setExpirationTime(now + 60)
          .sign(secret);
      },
    ],
  ];
  for (const [name, make] of refused) {
    test(`auth external: a token ${name} is refused with 401`, async () => {
      const reply = await get('/v2/team/app/manifests/v1', await make());
      assert.equal(reply.status, 401);
      assert.equal(errorCode(reply), 'UNAUTHORIZED');
    });
  }

  test('auth external: Basic credentials are not accepted in external token mode', async () => {
    const reply = await request(`${server.url}/v2/`, {
      headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    });
    assert.equal(reply.status, 401);
  });
});

describe('auth external: JWKS', () => {
  let server: ApiServer;
  before(async () => {
    const token = {
      realm,
      service: 'registry.test',
      issuer: 'idp',
      jwks: join(dir, 'jwks.json'),
      autoredirect: true,
    };
    server = await startApiServer({ auth: { token } });
  });
  after(() => server.close());

  test('auth external: a token whose kid names a JWKS key is accepted', async () => {
    const token = await sign(pullApp, { key: jwksKey, alg: 'ES256', kid: 'key-1' });
    const reply = await request(`${server.url}/v2/team/app/tags/list`, { headers: bearer(token) });
    assert.equal(reply.status, 404, 'authorized: the repository does not exist');
  });

  test('auth external: a token of an unknown kid or key is refused', async () => {
    const unknownKid = await sign(pullApp, { key: jwksKey, alg: 'ES256', kid: 'key-2' });
    const otherKey = await sign(pullApp, { key: strangerKey, kid: 'key-1' });
    for (const token of [unknownKid, otherKey]) {
      const reply = await request(`${server.url}/v2/team/app/tags/list`, {
        headers: bearer(token),
      });
      assert.equal(reply.status, 401);
    }
  });

  test('auth external: autoredirect points the realm at this host', async () => {
    const reply = await request(`${server.url}/v2/`);
    assert.match(
      reply.headers.get('www-authenticate') ?? '',
      new RegExp(`realm="${server.url}/auth/token"`),
    );
  });
});
