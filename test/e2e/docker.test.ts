import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startDockerDaemon, type DockerDaemon } from '../support/docker-daemon.js';
import {
  acceptAnyManifest,
  buildImagesSharingBase,
  importBusyboxImage,
  inspectDockerImage,
} from '../support/images.js';
import {
  createWorkDirectory,
  registryCommands,
  removeWorkDirectory,
  skipUnlessInstalled,
  withRegistry,
  type RegistryProcess,
} from '../support/registry-process.js';

/**
 * The docker CLI and a private dockerd against the registry: push, catalog,
 * tags, pull by tag and by digest, nested names, layer reuse, run.
 */

const skip = skipUnlessInstalled(['dockerd', 'docker', 'tar', ...registryCommands()]);
const timeout = 300_000;

let daemon: DockerDaemon;
let workDir: string;
/** Why this machine cannot run containers, when it cannot. */
let cannotRun: string | undefined;

before(async () => {
  if (skip !== false) return;
  workDir = await createWorkDirectory('docker-images');
  daemon = await startDockerDaemon();
  cannotRun = await probeContainerRun();
});

after(async () => {
  await daemon?.stop();
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

/** Runs a container from a locally imported image: a failure here is the machine's. */
async function probeContainerRun(): Promise<string | undefined> {
  const probe = await importBusyboxImage(daemon, workDir, `berth-e2e-probe:${randomUUID()}`);
  const args = ['run', '--rm', '--network', 'host', probe.reference, '/bin/busybox', 'true'];
  const result = await daemon.dockerResult(args);
  await daemon.docker(['image', 'rm', probe.reference]);
  if (result.code === 0) return undefined;
  return `this machine's docker engine cannot run containers: ${result.stderr.trim()}`;
}

async function push(reference: string): Promise<string> {
  return daemon.docker(['push', reference]);
}

function pushedDigest(pushOutput: string): string {
  const match = /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushOutput);
  assert.ok(match?.[1] !== undefined, `no digest in docker push output:\n${pushOutput}`);
  return match[1];
}

/**
 * A tags list. Its order is left to the API tests: the OCI spec asks for
 * lexical order, Distribution 2.8 answers in its storage's order.
 */
interface TagList {
  name: string;
  tags: string[];
}

/** The last status docker printed for each layer, by short layer ID. */
function layerStatuses(pushOutput: string): Map<string, string> {
  const statuses = new Map<string, string>();
  for (const line of pushOutput.split('\n')) {
    const match = /^([0-9a-f]{12}): (.+)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) statuses.set(match[1], match[2]);
  }
  return statuses;
}

/** Removes the image and every other local image, so that a pull must fetch every layer. */
async function removeLocalImages(reference: string): Promise<void> {
  await daemon.docker(['image', 'rm', reference]);
  await daemon.docker(['image', 'prune', '--all', '--force']);
  const left = await daemon.docker(['image', 'ls', '--quiet']);
  assert.equal(left.trim(), '', 'local images left after docker image prune --all');
}

async function manifestLayers(registry: RegistryProcess, name: string, tag: string) {
  const manifest = (await registry.getJson(`/v2/${name}/manifests/${tag}`, {
    accept: acceptAnyManifest,
  })) as { layers: { digest: string }[] };
  return manifest.layers.map((layer) => layer.digest);
}

void test(
  'docker: two pushed images that share a layer both appear in the catalog, sorted',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const [zebra, apple] = await buildImagesSharingBase(daemon, workDir, [
        `${registry.host}/zebra:1`,
        `${registry.host}/apple:1`,
      ]);
      assert.ok(zebra !== undefined && apple !== undefined);
      assert.equal(zebra.layers[0], apple.layers[0], 'the test images share their base layer');

      await push(zebra.reference);
      const second = await push(apple.reference);
      const baseStatus = layerStatuses(second).get(apple.layers[0]?.slice(7, 19) ?? '');
      assert.match(baseStatus ?? '', /Mounted from zebra|Layer already exists/, second);

      const catalog = await registry.getJson('/v2/_catalog');
      assert.deepEqual(catalog, { repositories: ['apple', 'zebra'] });
      const zebraLayers = await manifestLayers(registry, 'zebra', '1');
      const appleLayers = await manifestLayers(registry, 'apple', '1');
      assert.equal(zebraLayers[0], appleLayers[0], 'both manifests reference the shared layer');
      assert.notEqual(zebraLayers[1], appleLayers[1]);
    });
  },
);

void test(
  'docker: the tags list names every tag pushed to a repository',
  { skip, timeout },
  async () => {
    await withRegistry(async (registry) => {
      const repository = `${registry.host}/tagged`;
      const [image] = await buildImagesSharingBase(daemon, workDir, [`${repository}:1.0`]);
      assert.ok(image !== undefined);
      await daemon.docker(['tag', image.reference, `${repository}:1.1`]);
      await daemon.docker(['tag', image.reference, `${repository}:latest`]);

      await daemon.docker(['push', '--all-tags', repository]);

      const list = (await registry.getJson('/v2/tagged/tags/list')) as TagList;
      assert.equal(list.name, 'tagged');
      assert.deepEqual([...list.tags].sort(), ['1.0', '1.1', 'latest']);
    });
  },
);

void test(
  'docker: an image removed locally pulls back by tag with the same image ID',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const [image] = await buildImagesSharingBase(daemon, workDir, [`${registry.host}/hello:1`]);
      assert.ok(image !== undefined);
      await push(image.reference);
      await removeLocalImages(image.reference);

      const output = await daemon.docker(['pull', image.reference]);

      assert.match(output, /Pull complete/);
      assert.match(output, /Downloaded newer image/);
      assert.deepEqual(await inspectDockerImage(daemon, image.reference), image);
    });
  },
);

void test('docker: an image removed locally pulls back by digest', { skip, timeout }, async () => {
  await withRegistry(async (registry) => {
    const [image] = await buildImagesSharingBase(daemon, workDir, [`${registry.host}/hello:1`]);
    assert.ok(image !== undefined);
    const digest = pushedDigest(await push(image.reference));
    await removeLocalImages(image.reference);

    const byDigest = `${registry.host}/hello@${digest}`;
    const output = await daemon.docker(['pull', byDigest]);

    assert.match(output, new RegExp(`Digest: ${digest}`));
    const pulled = await inspectDockerImage(daemon, byDigest);
    assert.equal(pulled.id, image.id);
    assert.deepEqual(pulled.layers, image.layers);
    const repoDigests = await daemon.docker([
      'image',
      'inspect',
      '--format',
      '{{json .RepoDigests}}',
      byDigest,
    ]);
    assert.deepEqual(JSON.parse(repoDigests), [byDigest]);
  });
});

void test(
  'docker: runs a container from an image pulled from the registry',
  {
    skip,
    timeout,
  },
  async (t) => {
    if (cannotRun !== undefined) {
      t.skip(cannotRun);
      return;
    }
    await withRegistry(async (registry) => {
      const [image] = await buildImagesSharingBase(daemon, workDir, [`${registry.host}/runme:1`]);
      assert.ok(image !== undefined);
      await push(image.reference);
      await removeLocalImages(image.reference);
      await daemon.docker(['pull', image.reference]);

      const args = [
        'run',
        '--rm',
        '--network',
        'host',
        image.reference,
        '/bin/busybox',
        'echo',
        'ok',
      ];
      const output = await daemon.docker(args);

      assert.equal(output.trim(), 'ok');
    });
  },
);

void test(
  'docker: pushes and pulls back the nested repository name a/b/c:1.0',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const [image] = await buildImagesSharingBase(daemon, workDir, [`${registry.host}/a/b/c:1.0`]);
      assert.ok(image !== undefined);
      await push(image.reference);

      assert.deepEqual(await registry.getJson('/v2/_catalog'), { repositories: ['a/b/c'] });
      assert.deepEqual(await registry.getJson('/v2/a/b/c/tags/list'), {
        name: 'a/b/c',
        tags: ['1.0'],
      });
      await removeLocalImages(image.reference);
      await daemon.docker(['pull', image.reference]);
      assert.equal((await inspectDockerImage(daemon, image.reference)).id, image.id);
    });
  },
);

void test(
  'docker: re-pushing an image reports every layer as already existing',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const [image] = await buildImagesSharingBase(daemon, workDir, [`${registry.host}/again:1`]);
      assert.ok(image !== undefined);
      const first = await push(image.reference);

      const second = await push(image.reference);

      const statuses = layerStatuses(second);
      assert.equal(statuses.size, image.layers.length, second);
      for (const [layer, status] of statuses) {
        assert.equal(status, 'Layer already exists', `layer ${layer} in:\n${second}`);
      }
      assert.equal(pushedDigest(second), pushedDigest(first));
    });
  },
);

void test(
  'docker: pulling a tag that was never pushed fails with manifest unknown',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const [image] = await buildImagesSharingBase(daemon, workDir, [`${registry.host}/known:1`]);
      assert.ok(image !== undefined);
      await push(image.reference);

      const result = await daemon.dockerResult(['pull', `${registry.host}/known:missing`]);

      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /manifest unknown/);
    });
  },
);
