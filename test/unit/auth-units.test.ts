import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseScope, parseScopes } from '../../src/auth/access.js';
import { grantAccess, type Caller } from '../../src/auth/caller.js';
import {
  comparePassword,
  editHtpasswdFile,
  hashPassword,
  parseHtpasswd,
} from '../../src/auth/htpasswd.js';
import { Policy, PolicyError } from '../../src/auth/policy.js';
import { loadOrCreateSigningKey } from '../../src/auth/signing-key.js';
import { LoginThrottle } from '../../src/auth/throttle.js';
import { validateConfig } from '../../src/config/load.js';
import { skipUnlessInstalled } from '../support/registry-process.js';

/** The access-control building blocks, without a server. */

async function tempDir() {
  return mkdtemp(join(tmpdir(), 'berth-auth-unit-'));
}

describe('auth units: scopes and patterns', () => {
  test('scopes: type, name with a port, and actions parse; malformed ones are dropped', () => {
    assert.deepEqual(parseScope('repository:team/app:pull,push'), {
      type: 'repository',
      name: 'team/app',
      actions: ['pull', 'push'],
    });
    assert.deepEqual(parseScope('repository(plugin):host:5000/app:pull')?.name, 'host:5000/app');
    assert.equal(parseScope('nonsense'), undefined);
    assert.equal(parseScopes(['repository:a:pull repository:b:push', 'bad']).length, 2);
  });
});

describe('auth units: policy', () => {
  const policy = Policy.parse(
    `
admins: [root]
groups: {dev: [ann]}
rules:
  - repository: [dev/**, tools/*]
    groups: [dev]
    actions: [pull, push]
  - repository: pub/*
    anonymous: true
    actions: [pull]
`,
    'test',
  );

  test('policy: actions are the union of matching rules; admins have all', () => {
    assert.deepEqual([...policy.actionsFor('ann', 'dev/x/y')].sort(), ['pull', 'push']);
    assert.deepEqual([...policy.actionsFor('ann', 'pub/x')], ['pull']);
    assert.deepEqual([...policy.actionsFor('ben', 'dev/x')], []);
    assert.deepEqual([...policy.actionsFor(undefined, 'pub/x')], ['pull']);
    assert.deepEqual([...policy.actionsFor('root', 'any/thing')].sort(), [
      'delete',
      'pull',
      'push',
    ]);
    assert.equal(policy.allowsAnonymous(), true);
  });

  test('policy: patterns follow the grammar of every Berth rule', () => {
    const rules = Policy.parse(
      'rules: [{repository: "**/cache", users: [ann], actions: [pull]}]',
      'test',
    );
    assert.equal(rules.actionsFor('ann', 'cache').size, 1, '** also stands for no component');
    assert.equal(rules.actionsFor('ann', 'a/b/cache').size, 1);
    assert.equal(rules.actionsFor('ann', 'cache2').size, 0);
    assert.throws(
      () => Policy.parse('rules: [{repository: "A/*", actions: [pull]}]', 'p'),
      /pattern/,
    );
  });

  test('policy: unknown keys and actions are refused with the place named', () => {
    assert.throws(
      () => Policy.parse('rules: [{repository: a, actions: [fly]}]', 'p.yml'),
      PolicyError,
    );
    assert.throws(() => Policy.parse('rulez: []', 'p.yml'), /unknown key "rulez"/);
    assert.throws(() => Policy.parse('a: [', 'p.yml'), /Invalid YAML in policy "p.yml"/);
  });

  test('policy: without a policy file, any user may do anything and anonymous nothing', () => {
    const open = Policy.authenticatedMayDoAnything();
    assert.equal(open.actionsFor('anyone', 'x').size, 3);
    assert.equal(open.actionsFor(undefined, 'x').size, 0);
  });
});

describe('auth units: grants', () => {
  const caller: Caller = {
    kind: 'user',
    name: 'ann',
    scheme: 'basic',
    actionsOn: (repository) => new Set(repository === 'a' ? (['pull'] as const) : []),
    mayListCatalog: false,
    isAdmin: false,
    catalogFilter: () => Promise.resolve(() => true),
  };

  test('grants: the intersection of what was asked and what the caller may do', () => {
    const asked = parseScopes([
      'repository:a:pull,push',
      'repository:a:*',
      'repository:b:pull',
      'registry:catalog:*',
      'unknown:x:y',
    ]);
    assert.deepEqual(grantAccess(caller, asked), [
      { type: 'repository', name: 'a', actions: ['pull'] },
    ]);
  });
});

describe('auth units: throttle', () => {
  test('throttle: pauses double after slowafter, blocks at blockafter, forgets after the window', () => {
    let now = 0;
    const throttle = new LoginThrottle(
      { slowAfter: 2, blockAfter: 4, windowMs: 60_000 },
      () => now,
    );
    throttle.fail('a');
    throttle.fail('a');
    assert.deepEqual(throttle.check('a'), { blocked: false, delayMs: 250 });
    throttle.fail('a');
    assert.deepEqual(throttle.check('a'), { blocked: false, delayMs: 500 });
    throttle.fail('a');
    assert.deepEqual(throttle.check('a'), { blocked: true, retryAfterSeconds: 60 });
    now = 30_500;
    assert.deepEqual(throttle.check('a'), { blocked: true, retryAfterSeconds: 30 });
    now = 60_000;
    assert.deepEqual(throttle.check('a'), { blocked: false, delayMs: 0 });
    assert.deepEqual(throttle.check('b'), { blocked: false, delayMs: 0 });
  });

  test('throttle: tracks a bounded number of addresses', () => {
    const throttle = new LoginThrottle({
      slowAfter: 1,
      blockAfter: 9,
      windowMs: 1000,
      maxAddresses: 2,
    });
    for (const address of ['a', 'b', 'c']) throttle.fail(address);
    assert.equal(throttle.check('a').blocked, false);
    assert.deepEqual(throttle.check('c'), { blocked: false, delayMs: 250 });
  });
});

describe('auth units: htpasswd', () => {
  test('htpasswd: edits keep comments and order, and write mode 0600 for a new file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'htpasswd');
    try {
      await writeFile(path, '# accounts\nann:x\nben:y\n', { mode: 0o640 });
      await editHtpasswdFile(path, (entries) => {
        entries.set('ann', 'z');
        entries.delete('ben');
        entries.set('cy', 'w');
      });
      assert.equal(await readFile(path, 'utf8'), '# accounts\nann:z\ncy:w\n');
      assert.equal((await stat(path)).mode & 0o777, 0o640, 'the mode is kept');
      const fresh = join(dir, 'fresh');
      await editHtpasswdFile(fresh, (entries) => void entries.set('a', 'b'));
      assert.equal((await stat(fresh)).mode & 0o777, 0o600);
      assert.deepEqual([...parseHtpasswd('a:1\n\n#c\nbad line\nb:2').keys()], ['a', 'b']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('htpasswd: new hashes are $2y$ and verify; other schemes never do', async () => {
    const hash = await hashPassword('secret', 4);
    assert.match(hash, /^\$2y\$04\$/);
    assert.equal(await comparePassword('secret', hash), true);
    assert.equal(await comparePassword('wrong', hash), false);
    assert.equal(await comparePassword('secret', '{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ='), false);
  });

  const apache = skipUnlessInstalled(['htpasswd']);
  test('htpasswd: files stay compatible with htpasswd -B both ways', { skip: apache }, async () => {
    const dir = await tempDir();
    const path = join(dir, 'htpasswd');
    const run = promisify(execFile);
    try {
      await run('htpasswd', ['-c', '-B', '-b', path, 'apache-user', 'apache-pw']);
      const fromApache = parseHtpasswd(await readFile(path, 'utf8')).get('apache-user') ?? '';
      assert.equal(await comparePassword('apache-pw', fromApache), true);

      const hash = await hashPassword('berth-pw', 5);
      await editHtpasswdFile(path, (entries) => void entries.set('berth-user', hash));
      await run('htpasswd', ['-v', '-b', path, 'berth-user', 'berth-pw']);
      await run('htpasswd', ['-v', '-b', path, 'apache-user', 'apache-pw']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('auth units: signing key', () => {
  test('signing key: processes starting at once end up with one key, mode 0600', async () => {
    const dir = await tempDir();
    const path = join(dir, 'auth', 'key.pem');
    try {
      const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateSigningKey(path)));
      assert.equal(new Set(keys.map((key) => key.keyId)).size, 1);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal((await loadOrCreateSigningKey(path)).keyId, keys[0]?.keyId);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('auth units: configuration', () => {
  const check = (raw: unknown) => () => validateConfig(raw, 'test');

  test('config: the auth and TLS keys of Distribution and Berth are accepted', () => {
    const config = validateConfig(
      {
        http: { tls: { certificate: 'c', key: 'k', clientcas: ['ca'], minimumtls: 'tls1.3' } },
        auth: {
          htpasswd: { realm: 'r', path: 'p' },
          tokenservice: { enabled: true, expiration: '10m' },
          policy: { path: 'x' },
          throttle: { slowafter: 3 },
        },
      },
      'test',
    );
    assert.equal(config.auth.throttle.blockafter, 10);
    assert.equal(config.auth.tokenservice?.service, 'berth');
    assert.equal(config.http.http2.disabled, false);
  });

  test('config: unknown auth and TLS keys are refused with their name', () => {
    assert.throws(
      check({ auth: { htpasswd: { path: 'p', relm: 'x' } } }),
      /unknown key "auth.htpasswd.relm"/,
    );
    assert.throws(
      check({ http: { tls: { certificate: 'c', key: 'k', cipher: 1 } } }),
      /"http.tls.cipher"/,
    );
    assert.throws(check({ auth: { silly: {} } }), /unknown key "auth.silly"/);
  });

  test('config: contradictory or incomplete auth sections are refused', () => {
    const token = { realm: 'https://a/t', service: 's', issuer: 'i', jwks: 'j' };
    assert.throws(check({ auth: { htpasswd: { path: 'p' }, token } }), /cannot both be set/);
    assert.throws(
      check({ auth: { token: { ...token, jwks: undefined } } }),
      /rootcertbundle or jwks/,
    );
    assert.throws(check({ auth: { tokenservice: { enabled: true } } }), /needs auth.htpasswd/);
    assert.throws(check({ auth: { policy: { path: 'p' } } }), /policy needs/);
    assert.throws(
      check({ http: { tls: { certificate: 'c', key: 'k', minimumtls: 'tls1.0' } } }),
      /tls1.2 or tls1.3/,
    );
  });

  test('config: REGISTRY_AUTH_HTPASSWD_PATH sets auth.htpasswd.path', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    const config = await loadConfig(undefined, {
      REGISTRY_AUTH_HTPASSWD_PATH: '/etc/berth/htpasswd',
      REGISTRY_AUTH_HTPASSWD_REALM: 'Berth',
    });
    assert.equal(config.auth.htpasswd?.path, '/etc/berth/htpasswd');
  });
});
