import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mintRobot } from '../../src/auth/robots.js';
import {
  authDirectory,
  basic,
  bearer,
  htpasswdText,
  testPolicy,
  testUsers,
  writeFiles,
} from '../support/auth.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { errorCode, pushImage, request } from '../support/oci-client.js';

/**
 * Robot tokens: scoped, expiring, revocable credentials for CI jobs, used
 * as a Basic password or a Bearer token, made with `berth robot create`.
 */

const berthMain = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const root = basic('root', testUsers.root);
let server: ApiServer;
let dir: string;

before(async () => {
  dir = await authDirectory();
  await writeFiles(dir, { htpasswd: htpasswdText(testUsers), 'policy.yml': testPolicy });
  const auth = {
    htpasswd: { path: join(dir, 'htpasswd') },
    policy: { path: join(dir, 'policy.yml') },
  };
  server = await startApiServer({ auth });
  await pushImage(server.url, 'ci/app', 'v1', {}, undefined, root);
  await pushImage(server.url, 'team-a/app', 'v1', {}, undefined, root);
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function robot(name: string, scopes: string[], lifetimeMs = 60_000) {
  const { record, token } = mintRobot(name, scopes, Date.now() + lifetimeMs);
  assert.equal(await server.registry.metadata.createRobot(record), true);
  return token;
}

function get(path: string, headers: Record<string, string>) {
  return request(`${server.url}${path}`, { headers });
}

describe('auth robots', () => {
  test('auth robots: a robot pushes and pulls within its scope, and is denied outside it', async () => {
    const token = await robot('pusher', ['repository:ci/*:pull,push']);
    const credentials = basic('pusher', token);
    await pushImage(server.url, 'ci/built', 'v1', {}, undefined, credentials);
    assert.equal((await get('/v2/ci/app/manifests/v1', credentials)).status, 200);
    const outside = await get('/v2/team-a/app/manifests/v1', credentials);
    assert.equal(outside.status, 403);
    assert.equal(errorCode(outside), 'DENIED');
    const deeper = await get('/v2/ci/a/b/tags/list', credentials);
    assert.equal(deeper.status, 403, 'ci/* does not reach ci/a/b');
  });

  test('auth robots: a robot token works as a Bearer token too', async () => {
    const token = await robot('bearer-bot', ['repository:ci/**:pull']);
    assert.equal((await get('/v2/ci/app/tags/list', bearer(token))).status, 200);
  });

  test('auth robots: another user name, a wrong secret or an expired robot answers 401', async () => {
    const token = await robot('strict', ['repository:ci/*:pull']);
    assert.equal((await get('/v2/', basic('someone-else', token))).status, 401);
    const tampered = `${token.slice(0, -4)}AAAA`;
    assert.equal((await get('/v2/', basic('strict', tampered))).status, 401);
    const expired = await robot('old', ['repository:ci/*:pull'], -1);
    assert.equal((await get('/v2/', basic('old', expired))).status, 401);
  });

  test('auth robots: a revoked robot is refused at once', async () => {
    const token = await robot('short-lived', ['repository:ci/*:pull']);
    assert.equal((await get('/v2/', basic('short-lived', token))).status, 200);
    assert.equal(await server.registry.metadata.deleteRobot('short-lived'), true);
    assert.equal((await get('/v2/', basic('short-lived', token))).status, 401);
  });

  test('auth robots: the catalog shows a robot what its scopes let it pull', async () => {
    const token = await robot('lister', ['repository:ci/*:pull', 'registry:catalog:*']);
    const reply = await get('/v2/_catalog', basic('lister', token));
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json<{ repositories: string[] }>().repositories, ['ci/app', 'ci/built']);
    const unlisted = await robot('no-catalog', ['repository:ci/*:pull']);
    assert.equal((await get('/v2/_catalog', basic('no-catalog', unlisted))).status, 403);
  });

  test('auth robots: berth robot create, list and revoke work on a serving registry', async () => {
    const config = join(dir, 'cli.yml');
    await writeFile(config, `storage: {filesystem: {rootdirectory: ${server.root}}}\n`);
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, [berthMain, 'robot', ...args, '--config', config]);

    const created = await cli(
      'create',
      'from-cli',
      '--scope',
      'repository:ci/*:pull,push',
      '--expires',
      '30d',
    );
    const token = created.stdout.trim();
    assert.match(token, /^berth_robot_/);
    assert.match(created.stderr, /not shown again/);
    assert.equal((await get('/v2/ci/app/tags/list', basic('from-cli', token))).status, 200);

    const listed = await cli('list');
    assert.match(listed.stdout, /^from-cli\texpires \S+\trepository:ci\/\*:pull,push$/m);
    assert.ok(!listed.stdout.includes(token));

    await cli('revoke', 'from-cli');
    assert.equal((await get('/v2/ci/app/tags/list', basic('from-cli', token))).status, 401);
  });
});
