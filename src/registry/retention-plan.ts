import type { ManifestNode, RepositoryContent, TagRecord } from '../metadata/metadata-store.js';
import { matchesAny } from './patterns.js';

/**
 * What one retention rule removes from one repository, decided from a
 * listing of its tags and manifests: pure, so that a dry run shows exactly
 * what a run removes.
 */

/** A retention rule, its patterns compiled and its durations in milliseconds. */
export interface RetentionRule {
  repositories: RegExp[];
  keepLatest?: number | undefined;
  keepTags: RegExp[];
  removeTagsOlderThanMs?: number | undefined;
  removeUntaggedAfterMs?: number | undefined;
}

export interface RetentionPlan {
  tags: TagRecord[];
  /** In an order that deletes an index before its children and a subject before its referrers. */
  manifests: ManifestNode[];
}

export interface PlanOptions {
  now: number;
  /** Tags that retention never removes (immutable tags). */
  isProtected: (tag: string) => boolean;
}

export function planRetention(
  content: RepositoryContent,
  rule: RetentionRule,
  options: PlanOptions,
): RetentionPlan {
  const tags = tagsToRemove(content.tags, rule, options);
  const removed = new Set(tags);
  const remaining = content.tags.filter((tag) => !removed.has(tag));
  const manifests =
    rule.removeUntaggedAfterMs === undefined
      ? []
      : manifestsToRemove(content.manifests, remaining, options.now - rule.removeUntaggedAfterMs);
  return { tags, manifests };
}

/**
 * A tag goes only when every condition the rule sets allows it: outside the
 * `keepLatest` most recently pushed, matching no `keepTags` pattern, and
 * older than `removeTagsOlderThanMs`. Without either of the first and last
 * conditions, no tag goes.
 */
function tagsToRemove(tags: TagRecord[], rule: RetentionRule, options: PlanOptions): TagRecord[] {
  const { keepLatest, removeTagsOlderThanMs: olderThan } = rule;
  if (keepLatest === undefined && olderThan === undefined) return [];

  const newestFirst = [...tags].sort(
    (a, b) => b.updatedAt - a.updatedAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return newestFirst.filter(
    (tag, rank) =>
      (keepLatest === undefined || rank >= keepLatest) &&
      (olderThan === undefined || tag.updatedAt < options.now - olderThan) &&
      !matchesAny(rule.keepTags, tag.name) &&
      !options.isProtected(tag.name),
  );
}

/**
 * Every manifest that nothing keeps. Kept are: tagged manifests, those
 * pushed at or after `pushedBefore`, and, from those, everything they need
 * or that needs them: the children an index lists, and the referrers whose
 * subject is kept. The rest goes, untagged referrers of a removed subject
 * included.
 *
 * Limitation: a manifest's age is counted from when it was pushed, not from
 * when it lost its last tag (the store keeps no such time): a manifest
 * pushed long ago whose tag moves today is removed by the next run. Keep
 * such images with `keeplatest` or `keeptags` rather than by the duration.
 */
function manifestsToRemove(
  manifests: ManifestNode[],
  tags: TagRecord[],
  pushedBefore: number,
): ManifestNode[] {
  const byDigest = new Map(manifests.map((node) => [node.digest, node]));
  const referrers = new Map<string, ManifestNode[]>();
  for (const node of manifests) {
    if (node.subject === null) continue;
    referrers.set(node.subject, [...(referrers.get(node.subject) ?? []), node]);
  }

  const kept = new Set<string>();
  const pending = [
    ...tags.map((tag) => tag.digest),
    ...manifests.filter((node) => node.createdAt >= pushedBefore).map((node) => node.digest),
  ];
  for (let digest = pending.pop(); digest !== undefined; digest = pending.pop()) {
    if (kept.has(digest)) continue;
    kept.add(digest);
    pending.push(...(byDigest.get(digest)?.children ?? []));
    pending.push(...(referrers.get(digest) ?? []).map((node) => node.digest));
  }
  return deletionOrder(manifests.filter((node) => !kept.has(node.digest)));
}

/**
 * Parents before children, subjects before referrers: the store deletes a
 * manifest only once nothing in the repository lists it or is its subject.
 * Ties in digest order, so that every run of one plan reads alike.
 * Manifests that hold one another in a cycle (an index whose subject is one
 * of its own children) are never ready: they stay, as the store's checks
 * would keep them anyway.
 */
function deletionOrder(removed: ManifestNode[]): ManifestNode[] {
  const digests = new Set(removed.map((node) => node.digest));
  const blockers = new Map<string, number>(removed.map((node) => [node.digest, 0]));
  const unblocks = new Map<string, string[]>();
  const block = (first: string, then: string) => {
    if (!digests.has(first) || !digests.has(then)) return;
    blockers.set(then, (blockers.get(then) ?? 0) + 1);
    unblocks.set(first, [...(unblocks.get(first) ?? []), then]);
  };
  for (const node of removed) {
    for (const child of new Set(node.children)) block(node.digest, child);
    if (node.subject !== null) block(node.subject, node.digest);
  }

  const byDigest = new Map(removed.map((node) => [node.digest, node]));
  const ready = removed.filter((node) => blockers.get(node.digest) === 0).map((n) => n.digest);
  const ordered: ManifestNode[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    const digest = ready.pop() as string;
    ordered.push(byDigest.get(digest) as ManifestNode);
    for (const next of unblocks.get(digest) ?? []) {
      const left = (blockers.get(next) ?? 0) - 1;
      blockers.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  return ordered;
}
