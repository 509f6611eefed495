import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RegistryUsage } from '../../src/metadata/metadata-store.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  authDirectory,
  basic,
  htpasswdText,
  testPolicy,
  testUsers,
  writeFiles,
} from '../support/auth.js';
import { errorCode, pushImage, request } from '../support/oci-client.js';

/** The usage endpoints under access control: the catalog's access, or pull on the repository. */

const root = basic('root', testUsers.root);
const alice = basic('alice', testUsers.alice);

let server: ApiServer;
let dir: string;

before(async () => {
  dir = await authDirectory();
  await writeFiles(dir, { htpasswd: htpasswdText(testUsers), 'policy.yml': testPolicy });
  const auth = {
    htpasswd: { realm: 'Berth test', path: join(dir, 'htpasswd') },
    policy: { path: join(dir, 'policy.yml') },
  };
  server = await startApiServer({ auth });
  for (const name of ['team-a/app', 'private/secret']) {
    await pushImage(server.url, name, 'v1', {}, undefined, root);
  }
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('usage under access control', () => {
  it('usage auth: a caller who may pull only some repositories gets those, without the total', async () => {
    const reply = await request(`${server.url}/admin/v1/usage`, { headers: alice });
    assert.equal(reply.status, 200);
    const usage = reply.json<Partial<RegistryUsage>>();
    assert.deepEqual(
      usage.repositories?.map((each) => each.repository),
      ['team-a/app'],
    );
    assert.equal(usage.total, undefined);
  });

  it('usage auth: an admin gets every repository and the total', async () => {
    const reply = await request(`${server.url}/admin/v1/usage`, { headers: root });
    const usage = reply.json<RegistryUsage>();
    assert.deepEqual(
      usage.repositories.map((each) => each.repository),
      ['private/secret', 'team-a/app'],
    );
    assert.equal(usage.total.repositories, 2);
  });

  it('usage auth: a wrong password answers 401 with a challenge', async () => {
    const reply = await request(`${server.url}/admin/v1/usage`, {
      headers: basic('alice', 'wrong'),
    });
    assert.equal(reply.status, 401);
    assert.ok(reply.headers.get('www-authenticate'));
  });

  it('usage auth: one repository needs pull on it', async () => {
    const allowed = await request(`${server.url}/admin/v1/usage/team-a/app`, { headers: alice });
    assert.equal(allowed.status, 200);
    const denied = await request(`${server.url}/admin/v1/usage/private/secret`, {
      headers: alice,
    });
    assert.equal(denied.status, 403);
    assert.equal(errorCode(denied), 'DENIED');
  });
});
