import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startDockerDaemon, type DockerDaemon } from '../support/docker-daemon.js';
import { importBusyboxImage } from '../support/images.js';
import {
  createWorkDirectory,
  findFreePort,
  removeWorkDirectory,
  RegistryProcess,
  skipUnlessInstalled,
  spawnLongLived,
} from '../support/registry-process.js';

/**
 * What docker shows when Berth's repository rules refuse a push: an
 * immutable tag pushed with another image, and a push past a quota. Both
 * answer DENIED, which docker prints as it is and does not retry.
 */

const skip = skipUnlessInstalled(['dockerd', 'docker', 'tar']);
const timeout = 240_000;
const berthMain = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let daemon: DockerDaemon;
let workDir: string;
let registry: RegistryProcess;

/** Berth with rules set from the environment, which takes YAML values. */
async function startBerthWithRules(): Promise<RegistryProcess> {
  const dir = await createWorkDirectory('berth-rules');
  const port = await findFreePort();
  const env = {
    ...process.env,
    REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'data'),
    REGISTRY_IMMUTABILITY_TAGS: '[{repositories: "prod/**", tags: ["v*"]}]',
    REGISTRY_QUOTAS_RULES: '[{repositories: "small/**", bytes: 100KB}]',
    REGISTRY_SERVER_WORKERS: '1',
  };
  const log: string[] = [];
  const child = spawnLongLived(process.execPath, [berthMain, 'serve'], env, log);
  const started = new RegistryProcess('berth', port, dir, child, log);
  await started.waitUntilReady();
  return started;
}

before(async () => {
  if (skip !== false) return;
  workDir = await createWorkDirectory('rules-docker');
  daemon = await startDockerDaemon();
  registry = await startBerthWithRules();
});

after(async () => {
  await registry?.stop();
  await daemon?.stop();
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

test(
  'rules docker: pushing another image under an immutable tag fails with the message',
  { skip, timeout },
  async () => {
    const reference = `${registry.host}/prod/app:v1`;
    await importBusyboxImage(daemon, workDir, reference);
    await daemon.docker(['push', reference]);
    await daemon.docker(['push', reference]);

    await importBusyboxImage(daemon, workDir, reference);
    const refused = await daemon.dockerResult(['push', reference]);
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr + refused.stdout,
      /denied: Tag "prod\/app:v1" is immutable: it already points at sha256:[0-9a-f]{64}/,
    );
  },
);

test(
  'rules docker: a push past the quota fails at once with the quota in the message',
  { skip, timeout },
  async () => {
    const reference = `${registry.host}/small/app:1`;
    await importBusyboxImage(daemon, workDir, reference);
    const started = Date.now();
    const refused = await daemon.dockerResult(['push', reference]);
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr + refused.stdout,
      /denied: Quota exceeded for repository "small\/app": it stores .* of its 97\.7 KiB \(100000 bytes\) quota, and the blob adds/,
    );
    assert.ok(Date.now() - started < 20_000, 'docker does not retry a DENIED upload');
    const manifest = await registry.request('/v2/small/app/manifests/1', { method: 'HEAD' });
    assert.equal(manifest.status, 404);
  },
);
