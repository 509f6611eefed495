import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  authDirectory,
  basic,
  capturedLogger,
  htpasswdText,
  quickHash,
  testPolicy,
  testUsers,
  waitForFileCheck,
  writeFiles,
} from '../support/auth.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { errorCode, pushBlob, pushImage, request } from '../support/oci-client.js';

/**
 * Access control with htpasswd accounts and Basic credentials: the 401
 * challenge, wrong and right passwords, what the policy allows each user,
 * the filtered catalog, mounts from repositories the caller cannot read,
 * and htpasswd and policy edits taking effect without a restart.
 */

const root = basic('root', testUsers.root);
const alice = basic('alice', testUsers.alice);
const bob = basic('bob', testUsers.bob);

let server: ApiServer;
let dir: string;
const logs = capturedLogger();

before(async () => {
  dir = await authDirectory();
  await writeFiles(dir, { htpasswd: htpasswdText(testUsers), 'policy.yml': testPolicy });
  const auth = {
    htpasswd: { realm: 'Berth test', path: join(dir, 'htpasswd') },
    policy: { path: join(dir, 'policy.yml') },
  };
  server = await startApiServer({ auth }, undefined, logs.log);
  await pushImage(server.url, 'team-a/app', 'v1', {}, undefined, root);
  await pushImage(server.url, 'public/base', 'v1', {}, undefined, root);
  await pushImage(server.url, 'private/secret', 'v1', {}, undefined, root);
  await pushImage(server.url, 'shared/tools', 'v1', {}, undefined, root);
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}) {
  return request(`${server.url}${path}`, { headers });
}

describe('auth basic: authentication', () => {
  test('auth basic: GET /v2/ without credentials answers 401 with a Basic challenge', async () => {
    const reply = await get('/v2/');
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'UNAUTHORIZED');
    assert.equal(reply.headers.get('www-authenticate'), 'Basic realm="Berth test"');
  });

  test('auth basic: a wrong password answers 401 UNAUTHORIZED', async () => {
    const reply = await get('/v2/', basic('alice', 'nope'));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'UNAUTHORIZED');
    assert.match(reply.headers.get('www-authenticate') ?? '', /^Basic /);
  });

  test('auth basic: an unknown user answers 401 like a wrong password', async () => {
    const reply = await get('/v2/', basic('mallory', 'alice-pw'));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'UNAUTHORIZED');
  });

  test('auth basic: the right password answers 200 on /v2/', async () => {
    const reply = await get('/v2/', alice);
    assert.equal(reply.status, 200);
  });

  test('auth basic: a malformed Authorization header answers 401', async () => {
    for (const header of ['Basic', 'Basic !!!', 'Digest abc', 'Basic bm9jb2xvbg==']) {
      const reply = await get('/v2/', { Authorization: header });
      assert.equal(reply.status, 401, header);
    }
  });

  test('auth basic: $2a$, $2b$ and $2y$ bcrypt entries are all accepted', async () => {
    const text = ['2a', '2b', '2y']
      .map((prefix) => `user${prefix}:${quickHash('pw', prefix as '2a')}\n`)
      .join('');
    await writeFile(join(dir, 'htpasswd'), htpasswdText(testUsers) + text);
    await waitForFileCheck();
    for (const prefix of ['2a', '2b', '2y']) {
      const reply = await get('/v2/', basic(`user${prefix}`, 'pw'));
      assert.equal(reply.status, 200, prefix);
    }
  });
});

describe('auth basic: authorization by the policy', () => {
  test('auth basic: anonymous pulls from an anonymous pattern, nothing else', async () => {
    assert.equal((await get('/v2/public/base/manifests/v1')).status, 200);
    const denied = await get('/v2/team-a/app/manifests/v1');
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('www-authenticate'), 'Basic realm="Berth test"');
  });

  test('auth basic: empty Basic credentials, as skopeo sends them, count as anonymous', async () => {
    const empty = { Authorization: `Basic ${Buffer.from(':').toString('base64')}` };
    assert.equal((await get('/v2/public/base/manifests/v1', empty)).status, 200);
    assert.equal((await get('/v2/team-a/app/manifests/v1', empty)).status, 401);
  });

  test('auth basic: anonymous push to an anonymous pull pattern answers 401', async () => {
    const reply = await request(`${server.url}/v2/public/base/blobs/uploads/`, { method: 'POST' });
    assert.equal(reply.status, 401);
  });

  test('auth basic: a group member pulls and pushes in the group repositories', async () => {
    assert.equal((await get('/v2/team-a/app/manifests/v1', alice)).status, 200);
    await pushImage(server.url, 'team-a/new', 'v1', {}, undefined, alice);
  });

  test('auth basic: a user without the permission gets 403 DENIED', async () => {
    const pull = await get('/v2/team-a/app/manifests/v1', bob);
    assert.equal(pull.status, 403);
    assert.equal(errorCode(pull), 'DENIED');
    const push = await request(`${server.url}/v2/team-a/app/blobs/uploads/`, {
      method: 'POST',
      headers: bob,
    });
    assert.equal(push.status, 403);
    assert.equal(errorCode(push), 'DENIED');
  });

  test('auth basic: pull rights do not allow delete; an admin may delete', async () => {
    const path = '/v2/shared/tools/manifests/v1';
    const denied = await request(`${server.url}${path}`, { method: 'DELETE', headers: alice });
    assert.equal(denied.status, 403);
    const image = await pushImage(server.url, 'shared/tools', 'v2', {}, undefined, root);
    const byDigest = `${server.url}/v2/shared/tools/manifests/${image.digest}`;
    assert.equal((await request(byDigest, { method: 'DELETE', headers: root })).status, 202);
  });

  test('auth basic: authenticated-user rules apply to every user, not to anonymous', async () => {
    assert.equal((await get('/v2/shared/tools/tags/list', bob)).status, 200);
    assert.equal((await get('/v2/shared/tools/tags/list')).status, 401);
  });

  test('auth basic: HEAD of a denied manifest answers 403 without a body', async () => {
    const reply = await request(`${server.url}/v2/private/secret/manifests/v1`, {
      method: 'HEAD',
      headers: alice,
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.body.length, 0);
  });
});

describe('auth basic: administrators', () => {
  test('auth basic: /admin/v1/ is for the policy administrators only', async () => {
    const gc = (headers: Record<string, string>) =>
      request(`${server.url}/admin/v1/gc?dryRun=true`, { method: 'POST', headers });
    assert.equal((await gc({})).status, 401);
    const denied = await gc(alice);
    assert.equal(denied.status, 403);
    assert.equal(errorCode(denied), 'DENIED');
    assert.equal((await gc(root)).status, 200);
  });

  test('auth basic: an administrator deletes a whole repository', async () => {
    await pushImage(server.url, 'team-a/doomed', 'v1', {}, undefined, root);
    const path = `${server.url}/admin/v1/repositories/team-a/doomed`;
    assert.equal((await request(path, { method: 'DELETE', headers: alice })).status, 403);
    assert.equal((await request(path, { method: 'DELETE', headers: root })).status, 200);
  });
});

describe('auth basic: catalog', () => {
  async function catalog(headers: Record<string, string> = {}, query = '') {
    const reply = await get(`/v2/_catalog${query}`, headers);
    assert.equal(reply.status, 200, reply.body.toString());
    return reply.json<{ repositories: string[] }>().repositories;
  }

  test('auth basic: the catalog lists only the repositories the caller may pull', async () => {
    assert.deepEqual(await catalog(), ['public/base']);
    assert.deepEqual(await catalog(bob), ['public/base', 'shared/tools']);
    const forAlice = await catalog(alice);
    assert.ok(!forAlice.includes('private/secret'));
    assert.ok(forAlice.includes('team-a/app') && forAlice.includes('public/base'));
    assert.ok((await catalog(root)).includes('private/secret'));
  });

  test('auth basic: catalog pages count only visible repositories', async () => {
    const first = await get('/v2/_catalog?n=1', bob);
    assert.deepEqual(first.json<{ repositories: string[] }>().repositories, ['public/base']);
    assert.match(first.headers.get('link') ?? '', /last=public%2Fbase/);
    assert.deepEqual(await catalog(bob, '?n=1&last=public%2Fbase'), ['shared/tools']);
  });
});

describe('auth basic: cross-repository mounts', () => {
  async function mount(
    target: string,
    digest: string,
    from: string | undefined,
    headers: Record<string, string>,
  ) {
    const query = from === undefined ? `mount=${digest}` : `mount=${digest}&from=${from}`;
    return request(`${server.url}/v2/${target}/blobs/uploads/?${query}`, {
      method: 'POST',
      headers,
    });
  }

  test('auth basic: a mount from a repository the caller cannot pull opens an upload instead', async () => {
    const digest = await pushBlob(server.url, 'private/secret', randomBytes(300), root);
    const reply = await mount('team-a/app', digest, 'private/secret', alice);
    assert.equal(reply.status, 202);
    assert.ok(reply.headers.get('location')?.includes('/blobs/uploads/'));
    const blob = await get(`/v2/team-a/app/blobs/${digest}`, alice);
    assert.equal(blob.status, 404);
  });

  test('auth basic: a mount without from never takes a blob only unreadable repositories hold', async () => {
    const digest = await pushBlob(server.url, 'private/secret', randomBytes(300), root);
    const reply = await mount('team-a/app', digest, undefined, alice);
    assert.equal(reply.status, 202);
    const unknown = await mount('team-a/app', `sha256:${'0'.repeat(64)}`, undefined, alice);
    assert.equal(unknown.status, 202, 'an unknown blob answers the same');
  });

  test('auth basic: a mount from a readable repository answers 201', async () => {
    const digest = await pushBlob(server.url, 'public/base', randomBytes(300), root);
    assert.equal((await mount('team-a/app', digest, 'public/base', alice)).status, 201);
    const other = await pushBlob(server.url, 'public/base', randomBytes(300), root);
    assert.equal((await mount('team-a/app', other, undefined, alice)).status, 201);
  });
});

describe('auth basic: changes without a restart', () => {
  test('auth basic: a user added to the htpasswd file logs in, then is refused once removed', async () => {
    const path = join(dir, 'htpasswd');
    await writeFile(path, htpasswdText({ ...testUsers, carol: 'carol-pw' }));
    await waitForFileCheck();
    assert.equal((await get('/v2/', basic('carol', 'carol-pw'))).status, 200);

    await writeFile(path, htpasswdText(testUsers));
    await waitForFileCheck();
    assert.equal((await get('/v2/', basic('carol', 'carol-pw'))).status, 401);
  });

  test('auth basic: a policy edit applies without a restart; a broken edit keeps the last good one', async () => {
    const path = join(dir, 'policy.yml');
    assert.equal((await get('/v2/private/secret/tags/list', bob)).status, 403);
    const grant = `${testPolicy}\n  - repository: private/*\n    users: [bob]\n    actions: [pull]\n`;
    await writeFile(path, grant);
    await waitForFileCheck();
    assert.equal((await get('/v2/private/secret/tags/list', bob)).status, 200);

    await writeFile(path, 'rules: [ {repository: x, actions: [fly]} ]');
    await waitForFileCheck();
    assert.equal((await get('/v2/private/secret/tags/list', bob)).status, 200);
    assert.ok(logs.lines.some((line) => String(line.msg).includes('policy file refused')));

    await writeFile(path, testPolicy);
    await waitForFileCheck();
    assert.equal((await get('/v2/private/secret/tags/list', bob)).status, 403);
  });
});

describe('auth basic: logs', () => {
  test('auth basic: every decision is logged with user, action, repository and result', async () => {
    await get('/v2/team-a/app/manifests/v1', bob);
    const decision = [...logs.lines]
      .reverse()
      .find(
        (line) => line.msg === 'access' && line.user === 'bob' && line.repository === 'team-a/app',
      );
    assert.ok(decision);
    assert.equal(decision.action, 'pull');
    assert.equal(decision.result, 'denied');
    const requestLine = [...logs.lines]
      .reverse()
      .find((line) => line.msg === 'request' && line.user === 'bob');
    assert.ok(requestLine, 'the request line names the user');
  });

  test('auth basic: no password and no Authorization header reach the log', async () => {
    await get('/v2/', basic('alice', 'typed-wrong-secret'));
    const text = logs.text();
    for (const secret of [...Object.values(testUsers), 'typed-wrong-secret']) {
      assert.ok(!text.includes(secret), `the log holds "${secret}"`);
    }
    for (const header of [alice, bob, root, basic('alice', 'typed-wrong-secret')]) {
      const credentials = header.Authorization?.slice('Basic '.length) ?? '';
      assert.ok(!text.includes(credentials), 'the log holds Basic credentials');
    }
  });
});
