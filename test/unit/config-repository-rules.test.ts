import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { parseSize } from '../../src/config/units.js';

/** Validates YAML text as a configuration. */
function load(text: string): Config {
  return validateConfig(parseYaml(text), 'test');
}

function rejectsNaming(text: string, ...parts: string[]) {
  assert.throws(
    () => load(text),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      for (const part of parts) assert.ok(error.message.includes(part), error.message);
      return true;
    },
  );
}

const rulesFile = `
retention:
  interval: 12h
  rules:
    - repositories: team-a/**
      keeplatest: 10
      keeptags: ['v*', 'release-*']
      removetagsolderthan: 90d
      removeuntaggedafter: 7d
    - repositories: [ci/*, scratch/**]
      removeuntaggedafter: 1d
immutability:
  tags:
    - repositories: prod/**
      tags: ['v*']
quotas:
  rules:
    - repositories: team-a/**
      bytes: 10GiB
    - repositories: '**'
      bytes: 500MB
`;

test('config: retention, immutability and quotas are off by default', () => {
  const config = load('');
  assert.deepEqual(config.retention, { enabled: true, interval: '24h', dryrun: false, rules: [] });
  assert.deepEqual(config.immutability, { tags: [] });
  assert.deepEqual(config.quotas, { rules: [] });
});

test('config: retention rules, immutable tags and quotas load', () => {
  const config = load(rulesFile);
  assert.equal(config.retention.interval, '12h');
  assert.deepEqual(config.retention.rules[0], {
    repositories: ['team-a/**'],
    keeplatest: 10,
    keeptags: ['v*', 'release-*'],
    removetagsolderthan: '90d',
    removeuntaggedafter: '7d',
  });
  assert.deepEqual(config.retention.rules[1], {
    repositories: ['ci/*', 'scratch/**'],
    keeptags: [],
    removeuntaggedafter: '1d',
  });
  assert.deepEqual(config.immutability.tags, [{ repositories: ['prod/**'], tags: ['v*'] }]);
  assert.deepEqual(config.quotas.rules, [
    { repositories: ['team-a/**'], bytes: 10 * 1024 ** 3 },
    { repositories: ['**'], bytes: 500_000_000 },
  ]);
});

test('config: a bad pattern is refused, naming the key and the pattern', () => {
  rejectsNaming(
    'retention: {rules: [{repositories: Team/App, keeplatest: 1}]}',
    'retention.rules.0.repositories',
    '"Team/App"',
  );
  rejectsNaming(
    'immutability: {tags: [{repositories: prod/**, tags: ["v/1"]}]}',
    'immutability.tags.0.tags.0',
    '"v/1"',
  );
});

test('config: an unknown key in a rule is refused, naming it', () => {
  rejectsNaming(
    'retention: {rules: [{repositories: a, keeplast: 1}]}',
    'unknown key "retention.rules.0.keeplast"',
  );
});

test('config: a bad quota size or duration is refused with what is expected', () => {
  rejectsNaming(
    'quotas: {rules: [{repositories: a, bytes: 10 gigs}]}',
    'quotas.rules.0.bytes',
    'GiB',
  );
  rejectsNaming(
    'retention: {rules: [{repositories: a, removeuntaggedafter: 7 days}]}',
    'removeuntaggedafter',
    'expected a duration',
  );
});

test('config: sizes take SI and IEC units, or whole bytes', () => {
  assert.equal(parseSize('500MB'), 500_000_000);
  assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
  assert.equal(parseSize('1.5 KiB'), 1536);
  assert.equal(parseSize('7B'), 7);
  assert.equal(parseSize('10'), undefined, 'a string needs its unit');
  assert.equal(parseSize('10gb'), undefined);
  assert.equal(
    load('quotas: {rules: [{repositories: a, bytes: 1234}]}').quotas.rules[0]?.bytes,
    1234,
  );
});
