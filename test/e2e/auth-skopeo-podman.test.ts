import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { testUsers } from '../support/auth.js';
import { runWithInput, startAuthRegistry, type AuthRegistry } from '../support/auth-registry.js';
import { writeBusyboxTar, writeOciLayout } from '../support/images.js';
import {
  removeWorkDirectory,
  run,
  runCommand,
  skipUnlessInstalled,
} from '../support/registry-process.js';

/**
 * skopeo and podman against a registry with access control: skopeo
 * --creds over HTTP and HTTPS (the certificate trusted by a certs
 * directory holding ca.crt, as docs/tls.md says for these tools), podman
 * login, push, pull and logout.
 */

const skip = skipUnlessInstalled(['skopeo', 'podman', 'tar', 'openssl']);
const timeout = 120_000;

let workDir: string;
let env: NodeJS.ProcessEnv;
let podmanFlags: string[];
let plain: AuthRegistry;
let secure: AuthRegistry;
let certDir: string;

before(async () => {
  if (skip !== false) return;
  workDir = await mkdtemp(join(tmpdir(), 'berth-e2e-auth-clients-'));
  await mkdir(join(workDir, 'tmp'));
  const authFile = join(workDir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  env = { ...process.env, REGISTRY_AUTH_FILE: authFile, TMPDIR: join(workDir, 'tmp') };
  podmanFlags = [
    ...['--root', join(workDir, 'root'), '--runroot', join(workDir, 'run')],
    ...['--tmpdir', join(workDir, 'tmp'), '--storage-driver', 'vfs'],
    ...['--cgroup-manager', 'cgroupfs', '--events-backend', 'none'],
  ];
  [plain, secure] = await Promise.all([
    startAuthRegistry(),
    startAuthRegistry({ tlsAddress: '127.0.0.1', tokenService: true }),
  ]);
  certDir = join(workDir, 'certs.d', secure.host);
  await mkdir(certDir, { recursive: true });
  await copyFile(secure.caFile, join(certDir, 'ca.crt'));
});

after(async () => {
  await plain?.stop();
  await secure?.stop();
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

function skopeo(args: readonly string[]) {
  return runCommand('skopeo', ['--insecure-policy', ...args], { env });
}

function podman(args: readonly string[]) {
  return runCommand('podman', [...podmanFlags, ...args], { env });
}

async function layout(name: string) {
  const dir = await mkdtemp(join(workDir, `${name}-`));
  return writeOciLayout(dir, '1', [{ os: 'linux', architecture: 'amd64' }]);
}

const alice = `alice:${testUsers.alice}`;

test(
  'auth skopeo: --creds copies in and out; wrong or missing credentials are refused, public images need none',
  { skip, timeout },
  async () => {
    const image = await layout('creds');
    const remote = `docker://${plain.host}/team-a/skopeo:1`;
    const noTls = ['--dest-tls-verify=false'];

    const wrong = await skopeo([
      'copy',
      ...noTls,
      '--dest-creds',
      'alice:wrong',
      image.reference,
      remote,
    ]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /unauthorized|authentication required/i);

    const pushed = await skopeo(['copy', ...noTls, '--dest-creds', alice, image.reference, remote]);
    assert.equal(pushed.code, 0, pushed.stderr);

    const inspect = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      alice,
      remote,
    ]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(
      (JSON.parse(inspect.stdout) as { config: { digest: string } }).config.digest,
      image.images[0]?.config.digest,
    );

    const anonymous = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--no-creds',
      remote,
    ]);
    assert.notEqual(anonymous.code, 0);
    const open = `docker://${plain.host}/public/skopeo:1`;
    const published = await skopeo([
      'copy',
      ...noTls,
      '--dest-creds',
      alice,
      image.reference,
      open,
    ]);
    assert.equal(published.code, 0, published.stderr);
    const anonymousPublic = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--no-creds',
      open,
    ]);
    assert.equal(anonymousPublic.code, 0, anonymousPublic.stderr);
    const bob = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `bob:${testUsers.bob}`,
      remote,
    ]);
    assert.notEqual(bob.code, 0);
    assert.match(bob.stderr, /denied/i);
  },
);

test(
  'auth skopeo: over HTTPS with the token service, trusted through a certs directory',
  { skip, timeout },
  async () => {
    const image = await layout('tls');
    const remote = `docker://${secure.host}/team-a/tls:1`;

    const untrusted = await skopeo(['copy', '--dest-creds', alice, image.reference, remote]);
    assert.notEqual(untrusted.code, 0, 'an unknown certificate must be refused');
    assert.match(untrusted.stderr, /x509|certificate/i);

    const certs = join(workDir, 'certs.d', secure.host);
    const pushed = await skopeo([
      'copy',
      '--dest-cert-dir',
      certs,
      '--dest-creds',
      alice,
      image.reference,
      remote,
    ]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const back = join(workDir, `back-${randomUUID()}`);
    const pulled = await skopeo([
      'copy',
      '--src-cert-dir',
      certs,
      '--src-creds',
      alice,
      remote,
      `oci:${back}:1`,
    ]);
    assert.equal(pulled.code, 0, pulled.stderr);
  },
);

test(
  'auth podman: login, push, pull, logout, then the pull is refused',
  { skip, timeout },
  async () => {
    const reference = `${plain.host}/team-a/podman:1`;
    const tar = await writeBusyboxTar(workDir, { 'etc/berth-e2e-id': randomUUID() });
    await run('podman', [...podmanFlags, 'import', '--quiet', tar, reference], { env });

    const loginArgs = [
      ...podmanFlags,
      'login',
      '--tls-verify=false',
      '--username',
      'alice',
      '--password-stdin',
      plain.host,
    ];
    const wrong = await runWithInput('podman', loginArgs, 'wrong', env);
    assert.notEqual(wrong.code, 0);
    const login = await runWithInput('podman', loginArgs, testUsers.alice, env);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/i);

    const push = await podman(['push', '--tls-verify=false', reference]);
    assert.equal(push.code, 0, push.stderr);
    await podman(['rmi', reference]);
    const pull = await podman(['pull', '--tls-verify=false', reference]);
    assert.equal(pull.code, 0, pull.stderr);

    assert.equal((await podman(['logout', plain.host])).code, 0);
    await podman(['rmi', reference]);
    const refused = await podman(['pull', '--tls-verify=false', reference]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /unauthorized|authentication required/i);
  },
);

test(
  'auth podman: login and pull over HTTPS with the token service and a certs directory',
  { skip, timeout },
  async () => {
    const certs = join(workDir, 'certs.d', secure.host);
    const loginArgs = [
      ...podmanFlags,
      'login',
      '--cert-dir',
      certs,
      '--username',
      'alice',
      '--password-stdin',
      secure.host,
    ];
    const login = await runWithInput('podman', loginArgs, testUsers.alice, env);
    assert.equal(login.code, 0, login.stderr);

    const reference = `${secure.host}/team-a/podman-tls:1`;
    const tar = await writeBusyboxTar(workDir, { 'etc/berth-e2e-id': randomUUID() });
    await run('podman', [...podmanFlags, 'import', '--quiet', tar, reference], { env });
    const push = await podman(['push', '--cert-dir', certs, reference]);
    assert.equal(push.code, 0, push.stderr);
    await podman(['rmi', reference]);
    const pull = await podman(['pull', '--cert-dir', certs, reference]);
    assert.equal(pull.code, 0, pull.stderr);
    await podman(['logout', secure.host]);
  },
);
