import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';
import type { Config } from '../../src/config/schema.js';

/** A Distribution-style file with the keys both registries share. */
const distributionFile = `
version: 0.1
log:
  level: debug
http:
  addr: 127.0.0.1:6000
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
`;

/** The config.yml shipped in Distribution's registry:2 image, verbatim. */
const registryImageFile = `
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;

/** Writes `text` as config.yml in a fresh directory and loads it with `env`. */
async function loadFile(text: string, env: NodeJS.ProcessEnv = {}): Promise<Config> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-config-'));
  try {
    const file = join(dir, 'config.yml');
    await writeFile(file, text);
    return await loadConfig(file, env);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Asserts a ConfigError whose message contains every one of `parts`. */
async function rejectsNaming(load: Promise<Config>, ...parts: string[]): Promise<void> {
  await assert.rejects(load, (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    for (const part of parts) assert.ok(error.message.includes(part), error.message);
    return true;
  });
}

test('config: without a file the defaults match Distribution', async () => {
  const config = await loadConfig(undefined, {});

  assert.equal(config.http.addr, '0.0.0.0:5000');
  assert.equal(config.storage.filesystem.rootdirectory, './data');
  assert.equal(config.storage.delete.enabled, true);
  assert.equal(config.limits.manifestbytes, 4 * 1024 * 1024);
  assert.equal(config.log.level, 'info');
});

test('config: an empty file gives the defaults', async () => {
  assert.deepEqual(await loadFile(''), await loadConfig(undefined, {}));
});

test('config: a file in Distribution format loads', async () => {
  const config = await loadFile(distributionFile);

  assert.equal(config.version, 0.1);
  assert.equal(config.log.level, 'debug');
  assert.equal(config.http.addr, '127.0.0.1:6000');
  assert.equal(config.storage.filesystem.rootdirectory, '/var/lib/registry');
  assert.equal(config.storage.delete.enabled, false);
});

test("config: the registry:2 image's own config.yml loads", async () => {
  const config = await loadFile(registryImageFile);

  assert.equal(config.http.addr, ':5000');
  assert.deepEqual(config.http.headers, { 'X-Content-Type-Options': ['nosniff'] });
  assert.equal(config.storage.filesystem.rootdirectory, '/var/lib/registry');
});

test('config: REGISTRY_ variables override the file', async () => {
  const config = await loadFile(distributionFile, {
    REGISTRY_HTTP_ADDR: '127.0.0.1:5001',
    REGISTRY_STORAGE_DELETE_ENABLED: 'false',
    REGISTRY_LOG_LEVEL: 'warn',
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv/berth',
  });

  assert.equal(config.http.addr, '127.0.0.1:5001');
  assert.equal(config.storage.delete.enabled, false);
  assert.equal(config.log.level, 'warn');
  assert.equal(config.storage.filesystem.rootdirectory, '/srv/berth');
});

test('config: REGISTRY_ variables set keys the file lacks', async () => {
  const config = await loadConfig(undefined, {
    REGISTRY_HTTP_ADDR: ':5001',
    REGISTRY_STORAGE_DELETE_ENABLED: 'false',
    REGISTRY_LIMITS_MANIFESTBYTES: '8388608',
  });

  assert.equal(config.http.addr, ':5001');
  assert.equal(config.storage.delete.enabled, false);
  assert.equal(config.limits.manifestbytes, 8 * 1024 * 1024);
});

test('config: Kubernetes service variables for "registry" are ignored', async () => {
  const config = await loadFile(distributionFile, {
    REGISTRY_PORT: 'tcp://10.0.0.1:5000',
    REGISTRY_PORT_5000_TCP: 'tcp://10.0.0.1:5000',
    REGISTRY_PORT_5000_TCP_ADDR: '10.0.0.1',
    REGISTRY_SERVICE_HOST: '10.0.0.1',
    REGISTRY_SERVICE_PORT: '5000',
  });

  assert.equal(config.http.addr, '127.0.0.1:6000');
});

test('config: variables without the REGISTRY_ prefix are ignored', async () => {
  const config = await loadConfig(undefined, { HTTP_ADDR: 'nonsense', REGISTRY: 'x' });

  assert.equal(config.http.addr, '0.0.0.0:5000');
});

test('config: a REGISTRY_ value made of digits stays a string where a string is expected', async () => {
  const config = await loadConfig(undefined, { REGISTRY_HTTP_SECRET: '12345' });
  assert.equal(config.http.secret, '12345');
});

test('config: an unknown key in the file is refused, naming it', async () => {
  const file = distributionFile.replace('rootdirectory:', 'rootdir:');

  await rejectsNaming(loadFile(file), 'unknown key', '"storage.filesystem.rootdir"');
  await rejectsNaming(loadFile('colour: blue\n'), 'unknown key', '"colour"');
});

test('config: an unknown REGISTRY_ variable is refused, naming it', async () => {
  const load = loadConfig(undefined, { REGISTRY_HTTP_ADRR: '127.0.0.1:5001' });

  await rejectsNaming(load, 'unknown key', '"http.adrr"', 'REGISTRY_HTTP_ADRR');
});

test('config: an address without a port is refused, naming http.addr', async () => {
  await rejectsNaming(loadFile('http:\n  addr: localhost\n'), '"http.addr"', 'host:port');
  const env = { REGISTRY_HTTP_ADDR: '0.0.0.0' };
  await rejectsNaming(loadConfig(undefined, env), '"http.addr"', 'REGISTRY_HTTP_ADDR');
});

test('config: an unknown log level is refused, naming log.level', async () => {
  await rejectsNaming(loadFile('log:\n  level: loud\n'), '"log.level"');
  const env = { REGISTRY_LOG_LEVEL: 'loud' };
  await rejectsNaming(loadConfig(undefined, env), '"log.level"', 'REGISTRY_LOG_LEVEL');
});

test('config: a delete.enabled that is not a boolean is refused, naming it', async () => {
  const file = 'storage:\n  delete:\n    enabled: maybe\n';
  await rejectsNaming(loadFile(file), '"storage.delete.enabled"');
  const env = { REGISTRY_STORAGE_DELETE_ENABLED: 'maybe' };
  await rejectsNaming(loadConfig(undefined, env), '"storage.delete.enabled"');
});

test('config: gc defaults, REGISTRY_GC_ variables, and a zero interval refused', async () => {
  const defaults = await loadConfig(undefined, {});
  assert.deepEqual(defaults.gc, {
    enabled: true,
    interval: '24h',
    grace: '1h',
    untagged: false,
    dryrun: false,
  });
  const env = { REGISTRY_GC_GRACE: '0s', REGISTRY_GC_UNTAGGED: 'true' };
  const fromEnv = await loadConfig(undefined, env);
  assert.deepEqual([fromEnv.gc.grace, fromEnv.gc.untagged], ['0s', true]);
  await rejectsNaming(loadFile('gc:\n  interval: 0s\n'), '"gc.interval"', 'more than 0s');
  await rejectsNaming(loadFile('gc:\n  graec: 1h\n'), '"gc.graec"');
  const purging = 'storage:\n  maintenance:\n    uploadpurging:\n      interval: 0m\n';
  await rejectsNaming(loadFile(purging), '"storage.maintenance.uploadpurging.interval"');
});

test('config: a manifest limit below 4 KiB is refused, naming it', async () => {
  await rejectsNaming(loadFile('limits:\n  manifestbytes: 100\n'), '"limits.manifestbytes"');
});

test('config: a variable below a scalar key is refused, naming it', async () => {
  const env = { REGISTRY_HTTP_ADDR: ':5001', REGISTRY_HTTP_ADDR_PORT: '5002' };

  await rejectsNaming(loadConfig(undefined, env), 'REGISTRY_HTTP_ADDR_PORT', '"addr"');
});

test('config: invalid YAML is refused, naming the file', async () => {
  await rejectsNaming(loadFile('http:\n  addr: [unclosed\n'), 'Invalid YAML', 'config.yml');
});

test('config: a file that is not a mapping is refused', async () => {
  await rejectsNaming(loadFile('- a\n- b\n'), 'expected a mapping');
});

test('config: a missing file is refused, naming it', async () => {
  const file = join(tmpdir(), 'berth-no-such-dir', 'config.yml');

  await rejectsNaming(loadConfig(file, {}), 'Cannot read configuration file', file);
});

test('config: parseDuration reads ms, s, m, h and d', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('168h'), 168 * 3_600_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.throws(() => parseDuration('1w'), /Invalid duration "1w"/);
});
