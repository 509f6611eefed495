import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  mediaTypes,
  readBlob,
  sha256Digest,
  writeOciLayout,
  type Descriptor,
  type OciLayout,
} from '../support/images.js';
import {
  createWorkDirectory,
  registryCommands,
  removeWorkDirectory,
  run,
  runCommand,
  skipUnlessInstalled,
  withRegistry,
  type CommandResult,
  type RegistryProcess,
} from '../support/registry-process.js';

/**
 * skopeo against the registry: multi-arch OCI indexes copied in with
 * `copy --all` and out again to OCI layouts and `dir:` directories, raw
 * manifests, tag lists, and delete by digest.
 */

const skip = skipUnlessInstalled(['skopeo', 'tar', ...registryCommands()]);
const timeout = 300_000;
const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

let workDir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  if (skip !== false) return;
  workDir = await createWorkDirectory('skopeo');
  const authFile = join(workDir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  env = { ...process.env, REGISTRY_AUTH_FILE: authFile, TMPDIR: workDir };
});

after(async () => {
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

/** The policy allows everything: these images are unsigned test content. */
function skopeo(args: readonly string[]): Promise<string> {
  return run('skopeo', ['--insecure-policy', ...args], { env });
}

function skopeoResult(args: readonly string[]): Promise<CommandResult> {
  return runCommand('skopeo', ['--insecure-policy', ...args], { env });
}

async function writeLayout(name: string, layoutPlatforms = platforms): Promise<OciLayout> {
  return writeOciLayout(await mkdtemp(join(workDir, `${name}-`)), '1', layoutPlatforms);
}

async function pushLayout(layout: OciLayout, destination: string): Promise<void> {
  await skopeo(['copy', '--all', '--dest-tls-verify=false', layout.reference, destination]);
}

/** Every descriptor of the layout: top manifest, image manifests, configs and layers. */
function allDescriptors(layout: OciLayout): Descriptor[] {
  const images = layout.images.flatMap((image) => [image.manifest, image.config, ...image.layers]);
  return [layout.top, ...images];
}

/** Checks that `dir` holds each descriptor's bytes under its digest, unaltered. */
async function assertLayoutHolds(dir: string, descriptors: readonly Descriptor[]): Promise<void> {
  for (const descriptor of descriptors) {
    const bytes = await readBlob(dir, descriptor);
    assert.equal(sha256Digest(bytes), descriptor.digest);
    assert.equal(bytes.length, descriptor.size);
  }
}

async function getManifest(registry: RegistryProcess, name: string, reference: string) {
  const accept = [mediaTypes.ociIndex, mediaTypes.ociManifest].join(', ');
  return registry.request(`/v2/${name}/manifests/${reference}`, { headers: { accept } });
}

void test(
  'skopeo: copy --all pushes a multi-arch OCI index that reads back byte for byte',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const layout = await writeLayout('multi');
      const remote = `docker://${registry.host}/multi:1`;

      await pushLayout(layout, remote);

      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', remote]);
      assert.equal(raw, layout.topBytes.toString('utf8'));
      for (const image of layout.images) {
        const reply = await getManifest(registry, 'multi', image.manifest.digest);
        assert.equal(reply.status, 200, reply.body);
        assert.equal(reply.headers.get('docker-content-digest'), image.manifest.digest);
        assert.equal(reply.headers.get('content-type'), mediaTypes.ociManifest);
        assert.equal(sha256Digest(reply.body), image.manifest.digest);
      }
    });
  },
);

void test(
  'skopeo: inspect picks the image of the requested platform from an index',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const layout = await writeLayout('multi');
      const remote = `docker://${registry.host}/multi:1`;
      await pushLayout(layout, remote);

      for (const image of layout.images) {
        const args = [
          'inspect',
          '--tls-verify=false',
          '--override-arch',
          image.platform.architecture,
        ];
        const details = JSON.parse(await skopeo([...args, remote])) as {
          Architecture: string;
          Os: string;
          Layers: string[];
        };
        assert.equal(details.Architecture, image.platform.architecture);
        assert.equal(details.Os, image.platform.os);
        assert.deepEqual(
          details.Layers,
          image.layers.map((layer) => layer.digest),
        );
      }
    });
  },
);

void test(
  'skopeo: copy --all brings a multi-arch image back to an OCI layout unchanged',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const layout = await writeLayout('multi');
      const remote = `docker://${registry.host}/multi:1`;
      await pushLayout(layout, remote);
      const copy = join(workDir, `copy-${registry.host.replace(':', '-')}`);

      await skopeo(['copy', '--all', '--src-tls-verify=false', remote, `oci:${copy}:back`]);

      const index = JSON.parse(await readFile(join(copy, 'index.json'), 'utf8')) as {
        manifests: Descriptor[];
      };
      assert.equal(index.manifests.length, 1);
      assert.equal(index.manifests[0]?.digest, layout.top.digest);
      await assertLayoutHolds(copy, allDescriptors(layout));
    });
  },
);

void test(
  'skopeo: copy --all brings a multi-arch image back to a dir: directory',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const layout = await writeLayout('multi');
      const remote = `docker://${registry.host}/multi:1`;
      await pushLayout(layout, remote);
      const copy = join(workDir, `dir-${registry.host.replace(':', '-')}`);

      await skopeo(['copy', '--all', '--src-tls-verify=false', remote, `dir:${copy}`]);

      const top = await readFile(join(copy, 'manifest.json'));
      assert.equal(sha256Digest(top), layout.top.digest);
      for (const image of layout.images) {
        const hex = image.manifest.digest.slice('sha256:'.length);
        const manifest = await readFile(join(copy, `${hex}.manifest.json`));
        assert.equal(sha256Digest(manifest), image.manifest.digest);
        for (const blob of [image.config, ...image.layers]) {
          const bytes = await readFile(join(copy, blob.digest.slice('sha256:'.length)));
          assert.equal(sha256Digest(bytes), blob.digest);
        }
      }
    });
  },
);

void test(
  'skopeo: a single-platform image converted to Docker schema 2 reads back in that format',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const layout = await writeLayout('single', platforms.slice(0, 1));
      const remote = `docker://${registry.host}/single:1`;

      await skopeo([
        'copy',
        '--format',
        'v2s2',
        '--dest-tls-verify=false',
        layout.reference,
        remote,
      ]);

      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', remote]);
      const manifest = JSON.parse(raw) as { mediaType: string; layers: Descriptor[] };
      assert.equal(manifest.mediaType, mediaTypes.dockerManifest);
      const layers = layout.images[0]?.layers.map((layer) => layer.digest);
      assert.deepEqual(
        manifest.layers.map((layer) => layer.digest),
        layers,
      );
    });
  },
);

void test('skopeo: list-tags names every tag of a repository', { skip, timeout }, async () => {
  await withRegistry(async (registry) => {
    const layout = await writeLayout('multi');
    const repository = `docker://${registry.host}/multi`;
    await pushLayout(layout, `${repository}:1`);
    const tlsOff = ['--src-tls-verify=false', '--dest-tls-verify=false'];
    await skopeo(['copy', '--all', ...tlsOff, `${repository}:1`, `${repository}:2.0`]);
    await skopeo(['copy', '--all', ...tlsOff, `${repository}:1`, `${repository}:latest`]);

    const output = await skopeo(['list-tags', '--tls-verify=false', repository]);

    const list = JSON.parse(output) as { Repository: string; Tags: string[] };
    assert.equal(list.Repository, `${registry.host}/multi`);
    assert.deepEqual([...list.Tags].sort(), ['1', '2.0', 'latest']);
  });
});

void test(
  'skopeo: delete by digest removes the manifest and a later pull fails with manifest unknown',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const layout = await writeLayout('multi');
      const remote = `docker://${registry.host}/multi`;
      await pushLayout(layout, `${remote}:1`);
      const byDigest = `${remote}@${layout.top.digest}`;

      await skopeo(['delete', '--tls-verify=false', byDigest]);

      const copy = join(workDir, `deleted-${registry.host.replace(':', '-')}`);
      for (const source of [byDigest, `${remote}:1`]) {
        const args = ['copy', '--all', '--src-tls-verify=false', source, `oci:${copy}:x`];
        const pull = await skopeoResult(args);
        assert.notEqual(pull.code, 0, `pulling ${source} after its deletion succeeded`);
        assert.match(pull.stderr, /manifest unknown/i);
      }
      const reply = await getManifest(registry, 'multi', layout.top.digest);
      assert.equal(reply.status, 404);
      const body = JSON.parse(reply.body) as { errors: { code: string }[] };
      assert.equal(body.errors[0]?.code, 'MANIFEST_UNKNOWN');
    });
  },
);
