import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { addReachable, blobFiles, pullCompletely } from '../support/gc-helpers.js';
import {
  errorCode,
  ociIndexType,
  ociManifestType,
  putManifest,
  request,
  sha256,
} from '../support/oci-client.js';

/**
 * Garbage collection under load: pushers push images that share layers,
 * multi-arch indexes among them, and delete some of what they pushed,
 * while collections run in a loop, both in the serving process (the admin
 * endpoint) and in `berth gc` processes beside it, with a short grace
 * window and untagged removal. Pushes follow docker's protocol: HEAD each
 * blob, upload only the missing ones, then PUT the manifest.
 *
 * Afterwards every tag pulls completely and verifies, and once a last
 * collection has run, the blob store holds exactly what the tags reach.
 */

const run = promisify(execFile);
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const loadMs = 15_000;
const graceSeconds = 2;
const repositories = ['load/one', 'load/two'];
const sharedLayers = Array.from({ length: 6 }, () => randomBytes(2048));

interface Stats {
  pushes: number;
  failedPushes: string[];
  collections: number;
  removed: number;
}

test(
  'gc: pushes sharing layers while collections run in a loop lose nothing',
  { timeout: 120_000 },
  async (t) => {
    const server = await startApiServer({ gc: { grace: `${graceSeconds}s` } });
    const stats: Stats = { pushes: 0, failedPushes: [], collections: 0, removed: 0 };
    try {
      const deadline = Date.now() + loadMs;
      const expected = new Map<string, Set<string>>(repositories.map((name) => [name, new Set()]));
      await Promise.all([
        ...[0, 1, 2, 3].map((id) => pushLoop(server, id, deadline, expected, stats)),
        collectLoop(deadline, stats, () => collectInProcess(server)),
        collectLoop(deadline, stats, collectInProcessOf(server)),
      ]);

      const { pushes, collections, removed } = stats;
      t.diagnostic(`${pushes} pushes, ${collections} collections, ${removed} items removed`);
      assert.deepEqual(stats.failedPushes, [], 'no push failed');
      assert.ok(stats.pushes > 40, `only ${stats.pushes} pushes`);
      assert.ok(stats.collections > 5, `only ${stats.collections} collections ran`);
      assert.ok(stats.removed > 0, 'the collections removed something');
      await verifyTags(server, expected);

      await sleep(graceSeconds * 1000 + 200);
      await collectInProcess(server);
      const reachable = new Set<string>();
      for (const [name, tags] of expected) {
        for (const tag of tags) await addReachable(server.url, name, tag, reachable);
      }
      assert.deepEqual(await blobFiles(server.root), [...reachable].sort());
      const dry = await request(`${server.url}/admin/v1/gc?dryRun=true&untagged=true`, {
        method: 'POST',
      });
      assert.equal(dry.json<{ items: unknown[] }>().items.length, 0);
    } finally {
      await server.close();
    }
  },
);

/**
 * Pushes image after image, every fourth a multi-arch index; deletes the
 * one before last unless it is one in five kept, by digest or by tag.
 */
async function pushLoop(
  server: ApiServer,
  id: number,
  deadline: number,
  expected: Map<string, Set<string>>,
  stats: Stats,
) {
  const name = repositories[id % repositories.length]!;
  const tags = expected.get(name)!;
  const pushed: { tag: string; digest: string }[] = [];
  for (let n = 0; Date.now() < deadline; n++) {
    const tag = `p${id}-${n}`;
    try {
      const push = n % 4 === 3 ? pushIndexLikeDocker : pushImageLikeDocker;
      pushed[n] = { tag, digest: await push(server.url, name, tag) };
      tags.add(tag);
      stats.pushes += 1;
    } catch (error) {
      stats.failedPushes.push(`${name}:${tag}: ${(error as Error).message}`);
    }
    const old = pushed[n - 2];
    if (old && (n - 2) % 5 !== 0) {
      await deleteOld(server, name, n % 2 === 0 ? old.digest : old.tag);
      tags.delete(old.tag);
    }
  }
}

async function deleteOld(server: ApiServer, name: string, reference: string) {
  const reply = await request(`${server.url}/v2/${name}/manifests/${reference}`, {
    method: 'DELETE',
  });
  assert.equal(reply.status, 202, `DELETE ${name}:${reference}: ${reply.body.toString()}`);
}

/** HEAD every blob, upload the missing ones, PUT the manifest: docker's order. */
async function pushImageLikeDocker(base: string, name: string, reference: string) {
  const config = Buffer.from(JSON.stringify({ os: 'linux', n: randomBytes(4) }));
  const shared = sharedLayers[Math.floor(Math.random() * sharedLayers.length)]!;
  const picks = [shared, randomBytes(512)];
  for (const blob of [config, ...picks]) await ensureBlob(base, name, blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: picks.map((layer) => descriptor('application/vnd.oci.image.layer.v1.tar', layer)),
    }),
  );
  await putOrFail(base, name, reference, manifest, ociManifestType);
  return sha256(manifest);
}

/** Two platform images by digest, then the index that lists them under the tag. */
async function pushIndexLikeDocker(base: string, name: string, tag: string) {
  const children = [];
  for (const arch of ['amd64', 'arm64']) children.push(await pushChildByDigest(base, name, arch));
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: ociIndexType, manifests: children }),
  );
  await putOrFail(base, name, tag, index, ociIndexType);
  return sha256(index);
}

async function pushChildByDigest(base: string, name: string, arch: string) {
  const config = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', n: randomBytes(4) }),
  );
  const layer = sharedLayers[Math.floor(Math.random() * sharedLayers.length)]!;
  for (const blob of [config, layer]) await ensureBlob(base, name, blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)],
    }),
  );
  const digest = sha256(manifest);
  await putOrFail(base, name, digest, manifest, ociManifestType);
  return {
    ...descriptor(ociManifestType, manifest),
    platform: { os: 'linux', architecture: arch },
  };
}

function descriptor(mediaType: string, bytes: Buffer) {
  return { mediaType, digest: sha256(bytes), size: bytes.length };
}

async function ensureBlob(base: string, name: string, bytes: Buffer) {
  const digest = sha256(bytes);
  const head = await request(`${base}/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
  if (head.status === 200) return;
  const reply = await request(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  if (reply.status !== 201) throw new Error(`upload ${digest}: ${reply.status}`);
}

async function putOrFail(base: string, name: string, ref: string, bytes: Buffer, type: string) {
  const reply = await putManifest(base, name, ref, bytes, type);
  if (reply.status === 201) return;
  throw new Error(`PUT ${ref}: ${reply.status} ${errorCode(reply) ?? ''} ${reply.body.toString()}`);
}

async function collectLoop(deadline: number, stats: Stats, collect: () => Promise<number>) {
  while (Date.now() < deadline) {
    const removed = await collect();
    if (removed >= 0) stats.collections += 1;
    stats.removed += Math.max(removed, 0);
    await sleep(100);
  }
}

/** Through the serving process's endpoint; -1 when another collection held the lease. */
async function collectInProcess(server: ApiServer): Promise<number> {
  const query = `grace=${graceSeconds}s&untagged=true`;
  const reply = await request(`${server.url}/admin/v1/gc?${query}`, { method: 'POST' });
  if (reply.status === 409) return -1;
  assert.equal(reply.status, 200, reply.body.toString());
  return reply.json<{ items: unknown[] }>().items.length;
}

/** `berth gc` in a process of its own; -1 when another collection held the lease. */
function collectInProcessOf(server: ApiServer): () => Promise<number> {
  return async () => {
    const env = { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: server.root };
    const args = [main, 'gc', '--grace', `${graceSeconds}s`, '--untagged', '--json'];
    try {
      const { stdout } = await run(process.execPath, args, { env });
      return (JSON.parse(stdout) as { items: unknown[] }).items.length;
    } catch (error) {
      if (/another collection is running/.test((error as { stderr?: string }).stderr ?? '')) {
        return -1;
      }
      throw error;
    }
  };
}

async function verifyTags(server: ApiServer, expected: Map<string, Set<string>>) {
  for (const [name, tags] of expected) {
    const listed = await request(`${server.url}/v2/${name}/tags/list?n=10000`);
    assert.deepEqual(listed.json<{ tags: string[] }>().tags.sort(), [...tags].sort(), name);
    for (const tag of tags) await pullCompletely(server.url, name, tag);
  }
}
