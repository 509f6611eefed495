import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { RegistryUsage } from '../../src/metadata/metadata-store.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  errorCode,
  ociManifestType,
  pushBlob,
  putManifest,
  request,
} from '../support/oci-client.js';

/**
 * Usage: two repositories that share a layer, measured through the admin
 * endpoint and `berth usage`, and `berth retention` run beside the server.
 */

const run = promisify(execFile);
const berth = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let server: ApiServer;
let configFile: string;

/** Sizes of the scenario: every figure below follows from these. */
const SHARED = 1000;
const sizes = { app: { config: 100, manifest: 0 }, other: { config: 200, manifest: 0 } };

/** Pushes a config of `configSize` bytes and the shared layer, then a manifest tagged v1. */
async function pushScenarioImage(name: 'app' | 'other', shared: Buffer) {
  const config = randomBytes(sizes[name].config);
  const configDigest = await pushBlob(server.url, `usage/${name}`, config);
  const layerDigest = await pushBlob(server.url, `usage/${name}`, shared);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: layerDigest,
          size: SHARED,
        },
      ],
    }),
  );
  const reply = await putManifest(server.url, `usage/${name}`, 'v1', manifest, ociManifestType);
  assert.equal(reply.status, 201);
  sizes[name].manifest = manifest.length;
}

before(async () => {
  server = await startApiServer();
  const shared = randomBytes(SHARED);
  await pushScenarioImage('app', shared);
  await pushScenarioImage('other', shared);
  configFile = join(server.root, 'config.yml');
  await writeFile(
    configFile,
    [
      'storage: {filesystem: {rootdirectory: ' + JSON.stringify(server.root) + '}}',
      "retention: {rules: [{repositories: 'usage/**', keeplatest: 0}]}",
    ].join('\n'),
  );
});

after(() => server.close());

function expectedUsage(): RegistryUsage {
  const row = (name: 'app' | 'other') => {
    const unique = sizes[name].config + sizes[name].manifest;
    return {
      repository: `usage/${name}`,
      objects: 3,
      storedBytes: unique + SHARED,
      uniqueBytes: unique,
      sharedBytes: SHARED,
    };
  };
  const app = row('app');
  const other = row('other');
  return {
    repositories: [app, other],
    total: {
      repositories: 2,
      objects: 5,
      storedBytes: app.uniqueBytes + other.uniqueBytes + SHARED,
      sharedBytes: SHARED,
    },
  };
}

describe('usage', () => {
  it('usage: GET /admin/v1/usage reports every repository and the total, exactly', async () => {
    const reply = await request(`${server.url}/admin/v1/usage`);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('content-type'), 'application/json');
    assert.deepEqual(reply.json(), expectedUsage());
  });

  it('usage: GET /admin/v1/usage/<name> reports one repository', async () => {
    const reply = await request(`${server.url}/admin/v1/usage/usage/app`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json(), expectedUsage().repositories[0]);
  });

  it('usage: an unknown repository answers 404 NAME_UNKNOWN, a bad name 400', async () => {
    const unknown = await request(`${server.url}/admin/v1/usage/usage/none`);
    assert.equal(unknown.status, 404);
    assert.equal(errorCode(unknown), 'NAME_UNKNOWN');
    const invalid = await request(`${server.url}/admin/v1/usage/Bad..Name`);
    assert.equal(invalid.status, 400);
    assert.equal(errorCode(invalid), 'NAME_INVALID');
    const post = await request(`${server.url}/admin/v1/usage`, { method: 'POST' });
    assert.equal(post.status, 405);
  });

  it('usage: berth usage --json prints the same figures', async () => {
    const all = await run('node', [berth, 'usage', '--config', configFile, '--json']);
    assert.deepEqual(JSON.parse(all.stdout), expectedUsage());
    const one = await run('node', [berth, 'usage', 'usage/other', '-c', configFile, '--json']);
    assert.deepEqual(JSON.parse(one.stdout), expectedUsage().repositories[1]);
  });

  it('usage: berth usage prints a table and the total', async () => {
    const { stdout } = await run('node', [berth, 'usage', '--config', configFile]);
    const lines = stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^REPOSITORY\s+STORED\s+UNIQUE\s+SHARED\s+OBJECTS$/);
    assert.match(lines[1] ?? '', /^usage\/app\s+\S+ KiB\s+\d+ bytes\s+1000 bytes\s+3$/);
    assert.match(lines.at(-1) ?? '', /^Total: .* in 5 blobs and manifests of 2 repositories/);
  });

  it('usage: berth usage of an unknown repository fails with a message', async () => {
    await assert.rejects(run('node', [berth, 'usage', 'usage/none', '-c', configFile]), (error) => {
      const { stderr, code } = error as { stderr: string; code: number };
      assert.equal(code, 1);
      assert.match(stderr, /Repository "usage\/none" is unknown or holds nothing/);
      return true;
    });
  });

  it('usage: berth retention --dry-run prints per repository and removes nothing', async () => {
    const { stdout } = await run('node', [berth, 'retention', '-c', configFile, '--dry-run']);
    assert.match(stdout, /^usage\/app: 1 tag, 0 manifests\n {2}tag v1 \(sha256:[0-9a-f]{64}\)$/m);
    assert.match(stdout, /^usage\/other: 1 tag, 0 manifests$/m);
    assert.match(stdout, /^Would remove 2 tags and 0 manifests in 2 repositories\.$/m);
    const tags = await request(`${server.url}/v2/usage/app/tags/list`);
    assert.deepEqual(tags.json<{ tags: string[] }>().tags, ['v1']);
  });
});
