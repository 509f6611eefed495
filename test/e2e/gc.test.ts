import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startDockerDaemon, type DockerDaemon } from '../support/docker-daemon.js';
import { blobBytes, blobFiles } from '../support/gc-helpers.js';
import {
  acceptAnyManifest,
  buildImagesSharingBase,
  importBusyboxImage,
  inspectDockerImage,
} from '../support/images.js';
import {
  createWorkDirectory,
  removeWorkDirectory,
  run,
  selectedRegistryKind,
  skipUnlessInstalled,
  withRegistry,
  type RegistryProcess,
} from '../support/registry-process.js';

/**
 * Garbage collection with docker: images pushed by the docker CLI, a tag
 * deleted, `berth gc` run beside the serving registry, and the space
 * measured on disk before and after; the other images still pull.
 */

const berthOnly =
  selectedRegistryKind() === 'berth' ? false : 'online garbage collection is Berth’s own';
const skip = berthOnly || skipUnlessInstalled(['dockerd', 'docker', 'tar']);
const timeout = 300_000;
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let daemon: DockerDaemon;
let workDir: string;

before(async () => {
  if (skip !== false) return;
  workDir = await createWorkDirectory('gc-images');
  daemon = await startDockerDaemon();
});

after(async () => {
  await daemon?.stop();
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

interface Manifest {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

/** The manifest's digest and what it references, as the registry serves them. */
async function describeImage(registry: RegistryProcess, name: string, tag: string) {
  const reply = await registry.request(`/v2/${name}/manifests/${tag}`, {
    headers: { accept: acceptAnyManifest },
  });
  assert.equal(reply.status, 200, reply.body);
  const manifest = JSON.parse(reply.body) as Manifest;
  const digest = reply.headers.get('docker-content-digest') ?? '';
  const blobs = [manifest.config, ...manifest.layers];
  return { digest, size: Buffer.byteLength(reply.body), blobs };
}

async function berthGc(registry: RegistryProcess, args: string[]): Promise<string> {
  const env = { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: registry.dataDir };
  return run(process.execPath, [main, 'gc', ...args], { env });
}

void test(
  'gc with docker: deleting a tag and collecting gives the space back; the other images still pull',
  { skip, timeout },
  async (t) => {
    await withRegistry(async (registry) => {
      const [apple, zebra] = await buildImagesSharingBase(daemon, workDir, [
        `${registry.host}/apple:1`,
        `${registry.host}/zebra:1`,
      ]);
      assert.ok(apple && zebra);
      const doomed = await importBusyboxImage(daemon, workDir, `${registry.host}/doomed:1`);
      for (const image of [apple, zebra, doomed]) await daemon.docker(['push', image.reference]);

      const gone = await describeImage(registry, 'doomed', '1');
      const expectedFreed = gone.size + gone.blobs.reduce((sum, blob) => sum + blob.size, 0);
      const filesBefore = await blobFiles(registry.dataDir);
      const bytesBefore = await blobBytes(registry.dataDir);
      const deleted = await registry.request('/v2/doomed/manifests/1', { method: 'DELETE' });
      assert.equal(deleted.status, 202);

      const dry = await berthGc(registry, ['--grace', '0s', '--untagged', '--dry-run']);
      assert.match(
        dry,
        new RegExp(
          `^Would remove 1 manifest, 2 blob links, 3 blobs, .*\\(${expectedFreed} bytes`,
          'm',
        ),
      );
      assert.equal(await blobBytes(registry.dataDir), bytesBefore, 'a dry run frees nothing');
      const summary = await berthGc(registry, ['--grace', '0s', '--untagged']);
      assert.match(
        summary,
        new RegExp(`^Removed 1 manifest, 2 blob links, 3 blobs, .*\\(${expectedFreed} bytes`, 'm'),
      );

      const bytesAfter = await blobBytes(registry.dataDir);
      assert.equal(bytesBefore - bytesAfter, expectedFreed, 'the space on disk is back');
      t.diagnostic(`blob files: ${bytesBefore} bytes before, ${bytesAfter} after`);
      const filesAfter = await blobFiles(registry.dataDir);
      assert.deepEqual(
        filesBefore.filter((digest) => !filesAfter.includes(digest)).sort(),
        [gone.digest, ...gone.blobs.map((blob) => blob.digest)].sort(),
      );

      for (const image of [apple, zebra, doomed]) {
        await daemon.docker(['image', 'rm', image.reference]);
      }
      await daemon.docker(['image', 'prune', '--all', '--force']);
      for (const image of [apple, zebra]) {
        await daemon.docker(['pull', image.reference]);
        assert.deepEqual(await inspectDockerImage(daemon, image.reference), image);
      }
      const missing = await daemon.dockerResult(['pull', doomed.reference]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /manifest unknown|not found/i);
    });
  },
);
