import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { testUsers } from '../support/auth.js';
import {
  createRobot,
  externalAddress,
  runWithInput,
  startAuthRegistry,
  type AuthRegistry,
} from '../support/auth-registry.js';
import { startDockerDaemon, type DockerDaemon } from '../support/docker-daemon.js';
import { importBusyboxImage } from '../support/images.js';
import { skipUnlessInstalled } from '../support/registry-process.js';

/**
 * docker against a registry with access control: docker login with Basic
 * credentials and with the token service (identity tokens), push, pull,
 * docker logout and the refused pull after it, a robot token, and a pull
 * over TLS trusted through /etc/docker/certs.d as docs/tls.md says.
 */

const skip = skipUnlessInstalled(['dockerd', 'docker', 'tar', 'openssl']);
const timeout = 180_000;

let daemon: DockerDaemon;
let workDir: string;

before(async () => {
  if (skip !== false) return;
  workDir = await mkdtemp(join(tmpdir(), 'berth-e2e-auth-docker-'));
  daemon = await startDockerDaemon();
});

after(async () => {
  await daemon?.stop();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

function login(host: string, user: string, password: string) {
  const args = ['login', '--username', user, '--password-stdin', host];
  return runWithInput('docker', args, password, daemon.env);
}

/** Pushes a fresh one-layer image, removes it locally, and pulls it back. */
async function pushAndPull(reference: string) {
  const image = await importBusyboxImage(daemon, workDir, reference);
  await daemon.docker(['push', reference]);
  await daemon.docker(['image', 'rm', reference]);
  await daemon.docker(['pull', reference]);
  const output = await daemon.docker(['image', 'inspect', '--format', '{{.Id}}', reference]);
  assert.equal(output.trim(), image.id);
}

async function withAuthRegistry(
  options: Parameters<typeof startAuthRegistry>[0],
  body: (registry: AuthRegistry) => Promise<void>,
) {
  const registry = await startAuthRegistry(options);
  try {
    await body(registry);
  } catch (error) {
    if (error instanceof Error)
      error.message += `\n\nBerth log:\n${registry.logText().slice(-3000)}`;
    throw error;
  } finally {
    await registry.stop();
  }
}

test(
  'auth docker: Basic login, push, pull, logout, then the pull is refused',
  { skip, timeout },
  async () => {
    await withAuthRegistry({}, async (registry) => {
      const reference = `${registry.host}/team-a/app:1`;
      const wrong = await login(registry.host, 'alice', 'not-her-password');
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /unauthorized/i);

      const ok = await login(registry.host, 'alice', testUsers.alice);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /Login Succeeded/);
      await pushAndPull(reference);

      await daemon.docker(['logout', registry.host]);
      await daemon.docker(['image', 'rm', reference]);
      const refused = await daemon.dockerResult(['pull', reference]);
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stderr,
        /unauthorized|authentication required|denied|no basic auth credentials/i,
      );
    });
  },
);

test(
  'auth docker: token login keeps an identity token; anonymous tokens pull; others are denied',
  { skip, timeout },
  async () => {
    await withAuthRegistry({ tokenService: true }, async (registry) => {
      const reference = `${registry.host}/team-a/tokens:1`;
      const ok = await login(registry.host, 'alice', testUsers.alice);
      assert.equal(ok.code, 0, ok.stderr);
      const config = JSON.parse(
        await readFile(join(daemon.dir, 'client', 'config.json'), 'utf8'),
      ) as {
        auths: Record<string, { identitytoken?: string }>;
      };
      assert.ok(config.auths[registry.host]?.identitytoken, 'docker keeps the refresh token');
      await pushAndPull(reference);
      const open = `${registry.host}/public/open:1`;
      await pushAndPull(open);

      await daemon.docker(['logout', registry.host]);
      await daemon.docker(['image', 'rm', open]);
      await daemon.docker(['pull', open]);
      const bob = await login(registry.host, 'bob', testUsers.bob);
      assert.equal(bob.code, 0, bob.stderr);
      await daemon.docker(['image', 'rm', reference]);
      const denied = await daemon.dockerResult(['pull', reference]);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /denied|unauthorized|authentication required/i);
      await daemon.docker(['logout', registry.host]);
    });
  },
);

test(
  'auth docker: a robot token logs in and pushes within its scope only',
  { skip, timeout },
  async () => {
    await withAuthRegistry({ tokenService: true }, async (registry) => {
      const token = await createRobot(registry, 'ci-bot', 'repository:ci/*:pull,push');
      const ok = await login(registry.host, 'ci-bot', token);
      assert.equal(ok.code, 0, ok.stderr);
      await pushAndPull(`${registry.host}/ci/app:1`);

      const outside = `${registry.host}/team-a/robot:1`;
      await importBusyboxImage(daemon, workDir, outside);
      const refused = await daemon.dockerResult(['push', outside]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /denied|unauthorized|authentication required/i);
      await daemon.docker(['logout', registry.host]);
    });
  },
);

test(
  'auth docker: over TLS, the certificate is trusted through certs.d/HOST:PORT/ca.crt',
  { skip, timeout },
  async (t) => {
    const address = externalAddress();
    if (address === undefined) {
      t.skip('this machine has no address outside 127.0.0.0/8, which docker never verifies');
      return;
    }
    await withAuthRegistry({ tlsAddress: address, tokenService: true }, async (registry) => {
      const reference = `${registry.host}/public/tls:1`;
      const untrusted = await login(registry.host, 'alice', testUsers.alice);
      assert.notEqual(untrusted.code, 0, 'an unknown certificate must be refused');
      assert.match(untrusted.stderr, /x509|certificate/i);

      // The port is this test's own, so no other registry's trust is touched.
      const certsDir = join('/etc/docker/certs.d', registry.host);
      await mkdir(certsDir, { recursive: true });
      try {
        await copyFile(registry.caFile, join(certsDir, 'ca.crt'));
        const ok = await login(registry.host, 'alice', testUsers.alice);
        assert.equal(ok.code, 0, ok.stderr);
        await pushAndPull(reference);
        await daemon.docker(['logout', registry.host]);
        assert.match(registry.logText(), /"tls":"http\/2 and http\/1.1"/);
      } finally {
        await rm(certsDir, { recursive: true, force: true });
      }
    });
  },
);
