import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { acceptAnyManifest, mediaTypes, writeBusyboxTar } from '../support/images.js';
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
 * podman against the registry, as root with a private storage root in a temp
 * directory (vfs driver, cgroupfs, no events journal): push and pull by tag
 * and by digest, both manifest formats, and a container run.
 */

const skip = skipUnlessInstalled(['podman', 'tar', ...registryCommands()]);
const timeout = 300_000;

/**
 * Podman's defaults for root raise the container's open-files and process
 * limits above the caller's; without CAP_SYS_RESOURCE (as in sandboxed CI
 * machines) runc then fails with "error setting rlimits". Lower limits need
 * no privilege.
 */
const runLimits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

let workDir: string;
let globalFlags: string[];
let env: NodeJS.ProcessEnv;
/** Why this machine cannot run containers with podman, when it cannot. */
let cannotRun: string | undefined;

before(async () => {
  if (skip !== false) return;
  workDir = await createWorkDirectory('podman');
  await mkdir(join(workDir, 'tmp'));
  globalFlags = [
    ...['--root', join(workDir, 'root'), '--runroot', join(workDir, 'run')],
    ...['--tmpdir', join(workDir, 'tmp'), '--storage-driver', 'vfs'],
    ...['--cgroup-manager', 'cgroupfs', '--events-backend', 'none'],
  ];
  const authFile = join(workDir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  env = { ...process.env, REGISTRY_AUTH_FILE: authFile, TMPDIR: join(workDir, 'tmp') };
  cannotRun = await probeContainerRun();
});

after(async () => {
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

function podman(args: readonly string[]): Promise<string> {
  return run('podman', [...globalFlags, ...args], { env });
}

function podmanResult(args: readonly string[]): Promise<CommandResult> {
  return runCommand('podman', [...globalFlags, ...args], { env });
}

/** `podman import` of a busybox root filesystem with a unique file: a one-layer image. */
async function importImage(reference: string): Promise<string> {
  const tarPath = await writeBusyboxTar(workDir, { 'etc/berth-e2e-id': randomUUID() });
  await podman(['import', '--quiet', tarPath, reference]);
  await rm(tarPath, { force: true });
  return imageId(reference);
}

async function imageId(reference: string): Promise<string> {
  return (await podman(['image', 'inspect', '--format', '{{.Id}}', reference])).trim();
}

async function removeImage(reference: string): Promise<void> {
  await podman(['rmi', reference]);
  const exists = await podmanResult(['image', 'exists', reference]);
  assert.equal(exists.code, 1, `${reference} is still stored locally`);
}

/** Runs a container from a locally imported image: a failure here is the machine's. */
async function probeContainerRun(): Promise<string | undefined> {
  const probe = `localhost/berth-e2e-probe:${randomUUID()}`;
  await importImage(probe);
  const args = ['run', '--rm', '--network', 'none', ...runLimits, probe, '/bin/busybox', 'true'];
  const result = await podmanResult(args);
  await podman(['rmi', probe]);
  if (result.code === 0) return undefined;
  return `this machine cannot run podman containers: ${result.stderr.trim()}`;
}

async function pushedManifestType(registry: RegistryProcess, name: string, tag: string) {
  const reply = await registry.request(`/v2/${name}/manifests/${tag}`, {
    headers: { accept: acceptAnyManifest },
  });
  assert.equal(reply.status, 200, reply.body);
  return reply.headers.get('content-type');
}

void test(
  'podman: pushes an imported busybox image and pulls it back with the same image ID',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const reference = `${registry.host}/pod:1`;
      const id = await importImage(reference);

      await podman(['push', '--tls-verify=false', reference]);
      await removeImage(reference);
      await podman(['pull', '--tls-verify=false', reference]);

      assert.equal(await imageId(reference), id);
      assert.deepEqual(await registry.getJson('/v2/pod/tags/list'), { name: 'pod', tags: ['1'] });
      assert.equal(await pushedManifestType(registry, 'pod', '1'), mediaTypes.ociManifest);
    });
  },
);

void test(
  'podman: pulls an image back by the digest its push reported',
  { skip, timeout },
  async () => {
    await withRegistry(async (registry) => {
      const reference = `${registry.host}/pod:1`;
      const id = await importImage(reference);
      const digestFile = join(workDir, `digest-${randomUUID()}`);
      await podman(['push', '--tls-verify=false', '--digestfile', digestFile, reference]);
      const digest = (await readFile(digestFile, 'utf8')).trim();
      await removeImage(reference);

      const byDigest = `${registry.host}/pod@${digest}`;
      await podman(['pull', '--tls-verify=false', byDigest]);

      assert.equal(await imageId(byDigest), id);
    });
  },
);

void test(
  'podman: pushes in Docker schema 2 format and pulls it back',
  { skip, timeout },
  async () => {
    await withRegistry(async (registry) => {
      const reference = `${registry.host}/docker-format:1`;
      await importImage(reference);

      await podman(['push', '--tls-verify=false', '--format', 'v2s2', reference]);

      const name = 'docker-format';
      assert.equal(await pushedManifestType(registry, name, '1'), mediaTypes.dockerManifest);
      await removeImage(reference);
      await podman(['pull', '--tls-verify=false', reference]);
      const exists = await podmanResult(['image', 'exists', reference]);
      assert.equal(exists.code, 0);
    });
  },
);

void test(
  'podman: runs a container from an image pulled from the registry',
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
      const reference = `${registry.host}/runme:1`;
      await importImage(reference);
      await podman(['push', '--tls-verify=false', reference]);
      await removeImage(reference);
      await podman(['pull', '--tls-verify=false', reference]);

      const args = ['run', '--rm', '--network', 'none', ...runLimits, reference];
      const output = await podman([...args, '/bin/busybox', 'echo', 'ok']);

      assert.equal(output.trim(), 'ok');
    });
  },
);

void test(
  'podman: pulling a tag that was never pushed fails with manifest unknown',
  {
    skip,
    timeout,
  },
  async () => {
    await withRegistry(async (registry) => {
      const reference = `${registry.host}/known:1`;
      await importImage(reference);
      await podman(['push', '--tls-verify=false', reference]);

      const pull = await podmanResult([
        'pull',
        '--tls-verify=false',
        `${registry.host}/known:nope`,
      ]);

      assert.notEqual(pull.code, 0);
      assert.match(pull.stderr, /manifest unknown/i);
    });
  },
);
