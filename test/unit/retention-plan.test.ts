import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ManifestNode, RepositoryContent } from '../../src/metadata/metadata-store.js';
import { compileTagPattern } from '../../src/registry/patterns.js';
import { planRetention, type RetentionRule } from '../../src/registry/retention-plan.js';

/** Retention's plan: which tags and untagged manifests a rule removes, and in which order. */

const HOUR = 3_600_000;
const NOW = 1_000 * HOUR;

function rule(overrides: Partial<RetentionRule>): RetentionRule {
  return { repositories: [/.*/], keepTags: [], ...overrides };
}

function node(digest: string, ageHours: number, extra: Partial<ManifestNode> = {}): ManifestNode {
  return {
    digest,
    mediaType: 'image',
    createdAt: NOW - ageHours * HOUR,
    subject: null,
    children: [],
    ...extra,
  };
}

function tag(name: string, digest: string, ageHours: number) {
  return { name, digest, updatedAt: NOW - ageHours * HOUR };
}

function plan(content: RepositoryContent, retention: RetentionRule, immutable: string[] = []) {
  const result = planRetention(content, retention, {
    now: NOW,
    isProtected: (name) => immutable.includes(name),
  });
  return {
    tags: result.tags.map((each) => each.name),
    manifests: result.manifests.map((m) => m.digest),
  };
}

const fiveTags: RepositoryContent = {
  tags: [
    tag('t1', 'a', 50),
    tag('t2', 'a', 40),
    tag('v1', 'b', 30),
    tag('t4', 'c', 20),
    tag('t5', 'c', 10),
  ],
  manifests: [node('a', 50), node('b', 30), node('c', 20)],
};

test('retention plan: keeplatest keeps the most recently pushed tags', () => {
  assert.deepEqual(plan(fiveTags, rule({ keepLatest: 2 })), {
    tags: ['v1', 't2', 't1'],
    manifests: [],
  });
  assert.deepEqual(plan(fiveTags, rule({ keepLatest: 5 })).tags, []);
  assert.deepEqual(plan(fiveTags, rule({ keepLatest: 0 })).tags.length, 5);
});

test('retention plan: keeptags patterns keep matching tags whatever else says', () => {
  const keepV = rule({ keepLatest: 1, keepTags: [compileTagPattern('v*')] });
  assert.deepEqual(plan(fiveTags, keepV).tags, ['t4', 't2', 't1']);
});

test('retention plan: removetagsolderthan removes tags pushed before the cut', () => {
  assert.deepEqual(plan(fiveTags, rule({ removeTagsOlderThanMs: 25 * HOUR })).tags, [
    'v1',
    't2',
    't1',
  ]);
});

test('retention plan: with keeplatest and an age, a tag goes only when both allow it', () => {
  const both = rule({ keepLatest: 4, removeTagsOlderThanMs: 25 * HOUR });
  assert.deepEqual(plan(fiveTags, both).tags, ['t1']);
});

test('retention plan: a rule with keeptags only removes nothing', () => {
  assert.deepEqual(plan(fiveTags, rule({ keepTags: [compileTagPattern('v*')] })), {
    tags: [],
    manifests: [],
  });
});

test('retention plan: protected (immutable) tags are never removed', () => {
  assert.deepEqual(plan(fiveTags, rule({ keepLatest: 0 }), ['t1', 'v1']).tags, ['t5', 't4', 't2']);
});

test('retention plan: equal times rank by name, so that runs agree', () => {
  const content = { tags: [tag('b', 'a', 1), tag('a', 'a', 1), tag('c', 'a', 1)], manifests: [] };
  assert.deepEqual(plan(content, rule({ keepLatest: 1 })).tags, ['b', 'c']);
});

test('retention plan: untagged manifests go after the duration, tagged ones stay', () => {
  const content: RepositoryContent = {
    tags: [tag('latest', 'tagged', 100)],
    manifests: [node('tagged', 100), node('old', 48), node('young', 1)],
  };
  assert.deepEqual(plan(content, rule({ removeUntaggedAfterMs: 24 * HOUR })), {
    tags: [],
    manifests: ['old'],
  });
});

test('retention plan: tags removed in a run leave their manifests untagged at once', () => {
  const content: RepositoryContent = {
    tags: [tag('old', 'a', 48), tag('new', 'b', 1)],
    manifests: [node('a', 48), node('b', 1)],
  };
  const both = rule({ keepLatest: 1, removeUntaggedAfterMs: 24 * HOUR });
  assert.deepEqual(plan(content, both), { tags: ['old'], manifests: ['a'] });
});

test('retention plan: the children of a tagged or young index stay', () => {
  const content: RepositoryContent = {
    tags: [tag('multi', 'index', 100)],
    manifests: [
      node('index', 100, { children: ['amd64', 'arm64'] }),
      node('amd64', 100),
      node('arm64', 100),
      node('young-index', 1, { children: ['shared-child'] }),
      node('shared-child', 100),
      node('stray', 100),
    ],
  };
  assert.deepEqual(plan(content, rule({ removeUntaggedAfterMs: 24 * HOUR })).manifests, ['stray']);
});

test('retention plan: an untagged index goes before its children, shared children stay', () => {
  const content: RepositoryContent = {
    tags: [tag('kept', 'kept-index', 100)],
    manifests: [
      node('z-index', 100, { children: ['a-child', 'shared'] }),
      node('a-child', 100),
      node('shared', 100),
      node('kept-index', 100, { children: ['shared'] }),
    ],
  };
  assert.deepEqual(plan(content, rule({ removeUntaggedAfterMs: 24 * HOUR })).manifests, [
    'z-index',
    'a-child',
  ]);
});

test('retention plan: referrers of a kept manifest stay, of a removed one go after it', () => {
  const content: RepositoryContent = {
    tags: [tag('app', 'image', 100)],
    manifests: [
      node('image', 100),
      node('sig', 100, { subject: 'image' }),
      node('sig-of-sig', 100, { subject: 'sig' }),
      node('a-old', 100),
      node('a-old-sbom', 100, { subject: 'a-old' }),
      node('0-orphan-referrer', 100, { subject: 'never-pushed' }),
    ],
  };
  assert.deepEqual(plan(content, rule({ removeUntaggedAfterMs: 24 * HOUR })).manifests, [
    '0-orphan-referrer',
    'a-old',
    'a-old-sbom',
  ]);
});

test('retention plan: the referrers of a multi-arch image and of its children stay', () => {
  const content: RepositoryContent = {
    tags: [tag('multi', 'index', 100)],
    manifests: [
      node('index', 100, { children: ['amd64'] }),
      node('amd64', 100),
      node('index-sig', 100, { subject: 'index' }),
      node('amd64-sbom', 100, { subject: 'amd64' }),
    ],
  };
  assert.deepEqual(plan(content, rule({ removeUntaggedAfterMs: 24 * HOUR })).manifests, []);
});

test('retention plan: without removeuntaggedafter no manifest goes', () => {
  const content: RepositoryContent = { tags: [], manifests: [node('old', 1000)] };
  assert.deepEqual(plan(content, rule({ keepLatest: 0 })).manifests, []);
});

const subjectHex = 'a'.repeat(64);
const subject = `sha256:${subjectHex}`;

test('retention plan: attached tags (sha256-<hex>.sig) are neither ranked nor aged', () => {
  const content: RepositoryContent = {
    tags: [
      tag('v1', subject, 100),
      tag(`sha256-${subjectHex}.sig`, 'sig', 200),
      tag(`sha256-${subjectHex}`, 'referrers-index', 300),
    ],
    manifests: [node(subject, 100), node('sig', 200), node('referrers-index', 300)],
  };
  assert.deepEqual(plan(content, rule({ keepLatest: 1, removeTagsOlderThanMs: HOUR })), {
    tags: [],
    manifests: [],
  });
});

test('retention plan: attached tags go, then what they point at, once the subject goes', () => {
  const content: RepositoryContent = {
    tags: [
      tag('v1', subject, 100),
      tag('v2', 'other', 1),
      tag(`sha256-${subjectHex}.sig`, 'sig', 100),
    ],
    manifests: [node(subject, 100), node('other', 1), node('sig', 100)],
  };
  const both = rule({ keepLatest: 1, removeUntaggedAfterMs: 24 * HOUR });
  assert.deepEqual(plan(content, both), {
    tags: ['v1', `sha256-${subjectHex}.sig`],
    manifests: ['sig', subject].sort(),
  });
  assert.deepEqual(
    plan(content, rule({ keepLatest: 1 })).tags,
    ['v1'],
    'without the untagged rule',
  );
});

test('retention plan: an attached tag whose subject is kept keeps its manifest', () => {
  const content: RepositoryContent = {
    tags: [tag('v1', subject, 100), tag(`sha256-${subjectHex}.att`, 'att', 100)],
    manifests: [node(subject, 100), node('att', 100)],
  };
  assert.deepEqual(plan(content, rule({ removeUntaggedAfterMs: HOUR })), {
    tags: [],
    manifests: [],
  });
});
