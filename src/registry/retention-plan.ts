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

/**
 * Tags that name a subject by digest, as clients without the referrers API
 * attach signatures and SBOMs: cosign's `sha256-<hex>.sig`, and the OCI
 * referrers tag schema's `sha256-<hex>` (distribution spec, "Referrers Tag
 * Schema"). Such a tag belongs to its subject rather than to the
 * repository's list of versions.
 */
const attachedTagPattern = /^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})(\..+)?$/;

/** The subject digest an attached tag names, or undefined for an ordinary tag. */
export function attachedSubject(tag: string): string | undefined {
  const match = attachedTagPattern.exec(tag);
  return match ? (match[1] as string).replace('-', ':') : undefined;
}

/**
 * Ordinary tags go by the rule's tag conditions. Attached tags are never
 * ranked nor aged: with `removeUntaggedAfterMs` they, and then what they
 * point at, go once their subject is not in the repository after the run;
 * otherwise they stay.
 */
export function planRetention(
  content: RepositoryContent,
  rule: RetentionRule,
  options: PlanOptions,
): RetentionPlan {
  const isAttached = (tag: TagRecord) =>
    attachedSubject(tag.name) !== undefined && !options.isProtected(tag.name);
  const ordinary = content.tags.filter((tag) => !isAttached(tag));
  const attached = content.tags.filter(isAttached);
  const tags = tagsToRemove(ordinary, rule, options);
  if (rule.removeUntaggedAfterMs === undefined) return { tags, manifests: [] };

  const removed = new Set(tags);
  const remaining = ordinary.filter((tag) => !removed.has(tag));
  const pushedBefore = options.now - rule.removeUntaggedAfterMs;
  const manifests = manifestsToRemove(content.manifests, remaining, attached, pushedBefore);
  const present = new Set(content.manifests.map((node) => node.digest));
  for (const node of manifests) present.delete(node.digest);
  const orphans = attached.filter((tag) => !present.has(attachedSubject(tag.name) ?? ''));
  return { tags: [...tags, ...orphans], manifests };
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
 * subject is kept, named by their `subject` or by an attached tag. The rest
 * goes, referrers of a removed subject included.
 *
 * Limitation: a manifest's age is counted from when it was pushed, not from
 * when it lost its last tag (the store keeps no such time): a manifest
 * pushed long ago whose tag moves today is removed by the next run. Keep
 * such images with `keeplatest` or `keeptags` rather than by the duration.
 */
function manifestsToRemove(
  manifests: ManifestNode[],
  tags: TagRecord[],
  attached: TagRecord[],
  pushedBefore: number,
): ManifestNode[] {
  const byDigest = new Map(manifests.map((node) => [node.digest, node]));
  const referrers = new Map<string, string[]>();
  const attach = (subject: string, digest: string) =>
    referrers.set(subject, [...(referrers.get(subject) ?? []), digest]);
  for (const node of manifests) if (node.subject !== null) attach(node.subject, node.digest);
  for (const tag of attached) attach(attachedSubject(tag.name) ?? '', tag.digest);

  const kept = new Set<string>();
  const pending = [
    ...tags.map((tag) => tag.digest),
    ...manifests.filter((node) => node.createdAt >= pushedBefore).map((node) => node.digest),
  ];
  for (let digest = pending.pop(); digest !== undefined; digest = pending.pop()) {
    if (kept.has(digest)) continue;
    kept.add(digest);
    pending.push(...(byDigest.get(digest)?.children ?? []));
    pending.push(...(referrers.get(digest) ?? []));
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
