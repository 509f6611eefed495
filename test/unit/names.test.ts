import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegistryError } from '../../src/errors/registry-error.js';
import { digestOf, isDigest, parseDigest, requireDigest } from '../../src/registry/digest.js';
import {
  isRepositoryName,
  isTag,
  maxNameLength,
  parseReference,
  requireRepositoryName,
} from '../../src/registry/names.js';

const sha256 = `sha256:${'a'.repeat(64)}`;
const sha512 = `sha512:${'b'.repeat(128)}`;

/** Asserts a RegistryError with `code` and, when given, a matching message. */
function throwsCode(call: () => unknown, code: string, message?: RegExp): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof RegistryError, String(error));
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  });
}

test('names: repository names of lowercase path components are valid', () => {
  const valid = ['a', 'a/b/c', 'team-a/app_1', 'a.b', 'a__b', 'a--b', 'a---b', '0', 'a1/2b'];
  for (const name of valid) assert.ok(isRepositoryName(name), name);
});

test('names: repository names outside the grammar are invalid', () => {
  const invalid = [
    '',
    'A',
    'a/B',
    'a/',
    '/a',
    'a//b',
    '../a',
    'a/..',
    'a/./b',
    '-a',
    'a_',
    'a.',
    'a..b',
    'a___b',
    'a%2Fb',
    'a b',
    'a:b',
    'a\\b',
  ];
  for (const name of invalid) assert.equal(isRepositoryName(name), false, name);
});

test('names: a repository name may be 255 characters but not 256', () => {
  assert.equal(maxNameLength, 255);
  const component = 'a'.repeat(100);
  const name255 = `${component}/${component}/${'c'.repeat(53)}`;
  assert.equal(name255.length, 255);
  assert.ok(isRepositoryName(name255));
  assert.equal(isRepositoryName(`${name255}d`), false);
  assert.equal(isRepositoryName('a'.repeat(256)), false);
});

test('names: requireRepositoryName answers NAME_INVALID quoting the name', () => {
  assert.equal(requireRepositoryName('team/app'), 'team/app');
  throwsCode(() => requireRepositoryName('Team/App'), 'NAME_INVALID', /"Team\/App"/);
});

test('names: requireRepositoryName truncates a huge name in its message', () => {
  const huge = 'x'.repeat(10_000);
  assert.throws(
    () => requireRepositoryName(huge),
    (error: unknown) => error instanceof RegistryError && error.message.length < 1000,
  );
});

test('names: tags of up to 128 characters from the tag alphabet are valid', () => {
  const valid = ['latest', 'v1.0-rc', '_x', 'X', '1', 'a.b_c-d', 'x'.repeat(128)];
  for (const tag of valid) assert.ok(isTag(tag), tag);
});

test('names: tags starting with . or -, too long, or with / are invalid', () => {
  const invalid = ['', '.x', '-x', 'x'.repeat(129), 'a/b', 'a:b', 'a b', 'a+b', 'é'];
  for (const tag of invalid) assert.equal(isTag(tag), false, tag);
});

test('names: parseReference reads a tag', () => {
  assert.deepEqual(parseReference('v1.0-rc'), { kind: 'tag', tag: 'v1.0-rc' });
});

test('names: parseReference reads a sha256 or sha512 digest', () => {
  assert.deepEqual(parseReference(sha256), { kind: 'digest', digest: sha256 });
  assert.deepEqual(parseReference(sha512), { kind: 'digest', digest: sha512 });
});

test('names: parseReference answers DIGEST_INVALID for anything with a colon', () => {
  const invalid = [
    'sha256:zz',
    `md5:${'a'.repeat(32)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'b'.repeat(64)}`,
    'latest:1',
  ];
  for (const value of invalid) {
    throwsCode(() => parseReference(value), 'DIGEST_INVALID', /expected sha256:/);
  }
});

test('names: parseReference answers TAG_INVALID for a bad tag', () => {
  for (const value of ['.x', '-x', 'x'.repeat(129), 'a/b', '']) {
    throwsCode(() => parseReference(value), 'TAG_INVALID', /Invalid tag/);
  }
});

test('digests: parseDigest splits sha256 and sha512 of the exact length', () => {
  assert.deepEqual(parseDigest(sha256), { algorithm: 'sha256', hex: 'a'.repeat(64) });
  assert.deepEqual(parseDigest(sha512), { algorithm: 'sha512', hex: 'b'.repeat(128) });
});

test('digests: other algorithms, uppercase or wrong lengths are not digests', () => {
  const invalid = [
    '',
    'sha256',
    'sha256:',
    `sha384:${'a'.repeat(96)}`,
    `SHA256:${'a'.repeat(64)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'a'.repeat(128)}`,
    `sha512:${'a'.repeat(64)}`,
    ` ${sha256}`,
    `${sha256}\n`,
  ];
  for (const value of invalid) {
    assert.equal(parseDigest(value), undefined, JSON.stringify(value));
    assert.equal(isDigest(value), false, JSON.stringify(value));
  }
});

test('digests: digestOf hashes with sha256 by default, or sha512', () => {
  const empty = new Uint8Array(0);
  assert.equal(
    digestOf(empty),
    'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  );
  assert.match(digestOf(empty, 'sha512'), /^sha512:cf83e135[a-f0-9]{120}$/);
});

test('digests: requireDigest returns the parsed digest', () => {
  assert.deepEqual(requireDigest(sha256), { algorithm: 'sha256', hex: 'a'.repeat(64) });
});

test('digests: requireDigest answers DIGEST_INVALID quoting the value', () => {
  const expected = /expected sha256:<64 hex> or sha512:<128 hex>/;
  throwsCode(() => requireDigest('sha256:zz'), 'DIGEST_INVALID', /"sha256:zz"/);
  throwsCode(() => requireDigest('sha256:zz'), 'DIGEST_INVALID', expected);
  throwsCode(() => requireDigest(undefined), 'DIGEST_INVALID', /Invalid digest ""/);
  throwsCode(() => requireDigest(null), 'DIGEST_INVALID', /Invalid digest ""/);
  throwsCode(() => requireDigest(''), 'DIGEST_INVALID', expected);
});
