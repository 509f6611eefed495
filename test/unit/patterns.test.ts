import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compileRepositoryPattern,
  compileTagPattern,
  matchesAny,
  repositoryPatternProblem,
  tagPatternProblem,
} from '../../src/registry/patterns.js';

/** Asserts which names a repository pattern matches and which it does not. */
function assertRepositoryPattern(pattern: string, matching: string[], other: string[]) {
  const compiled = compileRepositoryPattern(pattern);
  for (const name of matching) assert.ok(compiled.test(name), `${pattern} should match ${name}`);
  for (const name of other) assert.ok(!compiled.test(name), `${pattern} should not match ${name}`);
}

test('patterns: a plain repository pattern matches that name only', () => {
  assertRepositoryPattern('team-a/app', ['team-a/app'], ['team-a/app2', 'team-a', 'x/team-a/app']);
});

test('patterns: "*" matches within one path component', () => {
  assertRepositoryPattern('team-a/*', ['team-a/app', 'team-a/x.y'], ['team-a', 'team-a/app/api']);
  assertRepositoryPattern('*/app', ['a/app', 'b/app'], ['app', 'a/b/app']);
  assertRepositoryPattern('team-*/app', ['team-a/app', 'team-/app'], ['team-a/b/app']);
});

test('patterns: "**" matches across path components, at any depth', () => {
  assertRepositoryPattern(
    'team-a/**',
    ['team-a/app', 'team-a/app/api', 'team-a/a/b/c'],
    ['team-a', 'team-b/app', 'x/team-a/app'],
  );
  assertRepositoryPattern('**', ['a', 'a/b', 'a/b/c'], []);
});

test('patterns: "**" as a whole component also stands for no component', () => {
  assertRepositoryPattern('**/cache', ['cache', 'a/cache', 'a/b/cache'], ['cache2', 'a/cache/x']);
  assertRepositoryPattern(
    'team-a/**/cache',
    ['team-a/cache', 'team-a/x/cache', 'team-a/x/y/cache'],
    ['team-a', 'cache', 'team-b/cache'],
  );
});

test('patterns: regular expression characters in a pattern match themselves', () => {
  assertRepositoryPattern('a.b/c', ['a.b/c'], ['axb/c']);
});

test('patterns: repository patterns outside the grammar are refused with a reason', () => {
  for (const bad of ['', 'Team/app', 'a//b', '/a', 'a/', 'a/***', 'a b', 'a?']) {
    assert.ok(repositoryPatternProblem(bad), `"${bad}" should be refused`);
    assert.throws(() => compileRepositoryPattern(bad), /Invalid repository pattern/);
  }
  for (const good of ['a', '**', 'team-a/**', '*/app', 'a/**/b']) {
    assert.equal(repositoryPatternProblem(good), undefined, good);
  }
});

test('patterns: "*" in a tag pattern matches any run of characters', () => {
  const v = compileTagPattern('v*');
  for (const tag of ['v', 'v1', 'v1.2.3', 'v-rc_1']) assert.ok(v.test(tag), tag);
  for (const tag of ['1.0', 'latest', 'V1']) assert.ok(!v.test(tag), tag);

  const release = compileTagPattern('release-*-final');
  assert.ok(release.test('release-1.2-final'));
  assert.ok(!release.test('release-1.2'));
  assert.ok(compileTagPattern('latest').test('latest'));
  assert.ok(!compileTagPattern('latest').test('latest2'));
  assert.ok(!compileTagPattern('1.0').test('1x0'), 'a dot matches a dot only');
});

test('patterns: tag patterns outside the grammar are refused with a reason', () => {
  for (const bad of ['', 'a/b', 'v?', 'x'.repeat(129)]) {
    assert.ok(tagPatternProblem(bad), `"${bad}" should be refused`);
    assert.throws(() => compileTagPattern(bad), /Invalid tag pattern/);
  }
  assert.equal(tagPatternProblem('*'), undefined);
});

test('patterns: matchesAny is true when one of the patterns matches', () => {
  const patterns = ['v*', 'release-*'].map(compileTagPattern);
  assert.ok(matchesAny(patterns, 'release-1'));
  assert.ok(!matchesAny(patterns, 'latest'));
  assert.ok(!matchesAny([], 'latest'));
});
