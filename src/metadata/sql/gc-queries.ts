import { sql, type RawBuilder } from 'kysely';

import type {
  BlobRecord,
  CollectableLink,
  CollectableManifest,
  CollectionPage,
  CollectionRules,
} from '../metadata-store.js';
import { deleteManifestRows } from './manifest-writes.js';
import type { Db } from './repository-rows.js';

/**
 * The queries of garbage collection (src/registry/gc.ts), in three steps
 * that each make the next one's candidates: untagged manifests, then blob
 * links, then blobs and their bytes.
 *
 * Every step has a `find` query, run outside any transaction and paginated
 * on a primary key, and a `remove` that runs in one short transaction
 * holding the collector lock (collector-lock.ts) and checks each candidate
 * again with the same conditions: what a push made reachable since the
 * `find` is kept. Candidates are proposals; only the checks decide.
 *
 * A dry run cannot remove one step's results before finding the next
 * one's, so its `find` queries ask instead whether what holds a candidate
 * would itself survive the collection: a manifest survives when it is
 * reachable (`kept`, below); a link when it is young or a surviving
 * manifest references it.
 */

/** An empty fragment, for conditions that do not apply. */
const none = sql``;

/**
 * The manifests a collection with `untagged` keeps: the tagged ones, those
 * pushed within the grace window, and, transitively, an index's children
 * and every referrer of a kept manifest (its `subject` is kept). The rest
 * is what removing untagged manifests until none is left would remove,
 * except a cycle, which `find` reports and `remove` never reaches (see
 * src/registry/gc.ts).
 */
function keptManifests(before: number): RawBuilder<unknown> {
  return sql`
    edges (repository_id, parent, child) as (
      select repository_id, manifest_digest, digest from manifest_references
        where kind = 'manifest'
      union all
      select repository_id, subject, digest from manifests where subject is not null
    ),
    kept (repository_id, digest) as (
      select repository_id, digest from tags
      union
      select repository_id, digest from manifests where created_at >= ${before}
      union
      select e.repository_id, e.child from edges e
        join kept k on k.repository_id = e.repository_id and k.digest = e.parent
    )`;
}

/** Whether a dry run must ask `kept`: it simulates untagged removal. */
function simulatesUntagged(rules: CollectionRules): boolean {
  return rules.dryRun && rules.untagged;
}

function withKept(rules: CollectionRules): RawBuilder<unknown> {
  return simulatesUntagged(rules) ? sql`with recursive ${keptManifests(rules.before)}` : none;
}

/** `and` the manifest that holds the reference `alias` (a manifest_references row) survives. */
function holderSurvives(rules: CollectionRules, alias: string): RawBuilder<unknown> {
  if (!simulatesUntagged(rules)) return none;
  return sql`and exists (select 1 from kept k
    where k.repository_id = ${sql.ref(`${alias}.repository_id`)}
      and k.digest = ${sql.ref(`${alias}.manifest_digest`)})`;
}

interface KeyCursor {
  repositoryId: number;
  digest: string;
}

function encodeKey(key: KeyCursor): string {
  return `${key.repositoryId}/${key.digest}`;
}

function decodeKey(cursor: string | undefined): KeyCursor | undefined {
  if (cursor === undefined) return undefined;
  const slash = cursor.indexOf('/');
  return { repositoryId: Number(cursor.slice(0, slash)), digest: cursor.slice(slash + 1) };
}

/** Keyset pagination on `(repository_id, digest)`. */
function afterKey(alias: string, cursor: string | undefined): RawBuilder<unknown> {
  const key = decodeKey(cursor);
  if (!key) return sql`1 = 1`;
  const id = sql.ref(`${alias}.repository_id`);
  const digest = sql.ref(`${alias}.digest`);
  return sql`(${id} > ${key.repositoryId} or (${id} = ${key.repositoryId} and ${digest} > ${key.digest}))`;
}

function pageOf<Row extends KeyCursor, T>(
  rows: Row[],
  limit: number,
  toItem: (row: Row) => T,
): CollectionPage<T> {
  const last = rows.at(-1);
  const page: CollectionPage<T> = { items: rows.map(toItem) };
  if (last && rows.length >= limit) page.cursor = encodeKey(last);
  return page;
}

interface ManifestRow extends KeyCursor {
  name: string;
  media_type: string;
  size: number;
}

function toCollectableManifest(row: ManifestRow): CollectableManifest {
  return {
    repository: row.name,
    digest: row.digest,
    mediaType: row.media_type,
    size: Number(row.size),
  };
}

/** Nothing in the repository needs the manifest `m` any more, and it is old enough. */
function manifestIsUnneeded(before: number): RawBuilder<unknown> {
  return sql`m.created_at < ${before}
    and not exists (select 1 from tags t
      where t.repository_id = m.repository_id and t.digest = m.digest)
    and not exists (select 1 from manifest_references mr
      where mr.repository_id = m.repository_id and mr.digest = m.digest and mr.kind = 'manifest')
    and (m.subject is null or not exists (select 1 from manifests s
      where s.repository_id = m.repository_id and s.digest = m.subject))`;
}

export async function findCollectableManifests(
  db: Db,
  rules: CollectionRules,
  cursor: string | undefined,
  limit: number,
): Promise<CollectionPage<CollectableManifest>> {
  if (!rules.untagged) return { items: [] };
  const condition = rules.dryRun
    ? sql`not exists (select 1 from kept k
        where k.repository_id = m.repository_id and k.digest = m.digest)`
    : manifestIsUnneeded(rules.before);
  const { rows } = await sql<ManifestRow>`
    ${withKept(rules)}
    select m.repository_id as "repositoryId", r.name, m.digest, m.media_type, m.size
      from manifests m join repositories r on r.id = m.repository_id
      where ${afterKey('m', cursor)} and ${condition}
      order by m.repository_id, m.digest
      limit ${limit}`.execute(db);
  return pageOf(rows, limit, toCollectableManifest);
}

/** Inside the removal transaction: checks again, then deletes each repository's share. */
export async function removeCollectableManifests(
  trx: Db,
  rules: CollectionRules,
  candidates: readonly CollectableManifest[],
): Promise<CollectableManifest[]> {
  const removed: CollectableManifest[] = [];
  for (const [repositoryId, digests] of await groupByRepository(trx, candidates)) {
    const { rows } = await sql<ManifestRow>`
      select m.repository_id as "repositoryId", r.name, m.digest, m.media_type, m.size
        from manifests m join repositories r on r.id = m.repository_id
        where m.repository_id = ${repositoryId} and m.digest in (${sql.join(digests)})
          and ${manifestIsUnneeded(rules.before)}`.execute(trx);
    await deleteManifestRows(
      trx,
      repositoryId,
      rows.map((row) => row.digest),
    );
    removed.push(...rows.map(toCollectableManifest));
  }
  return removed;
}

interface LinkRow extends KeyCursor {
  name: string;
}

export async function findCollectableLinks(
  db: Db,
  rules: CollectionRules,
  cursor: string | undefined,
  limit: number,
): Promise<CollectionPage<CollectableLink>> {
  const { rows } = await sql<LinkRow>`
    ${withKept(rules)}
    select rb.repository_id as "repositoryId", r.name, rb.digest
      from repository_blobs rb join repositories r on r.id = rb.repository_id
      where ${afterKey('rb', cursor)} and rb.created_at < ${rules.before}
        and not exists (select 1 from manifest_references mr
          where mr.repository_id = rb.repository_id and mr.digest = rb.digest
            and mr.kind = 'blob' ${holderSurvives(rules, 'mr')})
      order by rb.repository_id, rb.digest
      limit ${limit}`.execute(db);
  return pageOf(rows, limit, (row) => ({ repository: row.name, digest: row.digest }));
}

export async function removeCollectableLinks(
  trx: Db,
  rules: CollectionRules,
  candidates: readonly CollectableLink[],
): Promise<CollectableLink[]> {
  const removed: CollectableLink[] = [];
  for (const [repositoryId, digests, repository] of await groupByRepository(trx, candidates)) {
    const { rows } = await sql<{ digest: string }>`
      delete from repository_blobs
        where repository_id = ${repositoryId} and digest in (${sql.join(digests)})
          and created_at < ${rules.before}
          and not exists (select 1 from manifest_references mr
            where mr.repository_id = repository_blobs.repository_id
              and mr.digest = repository_blobs.digest and mr.kind = 'blob')
        returning digest`.execute(trx);
    removed.push(...rows.map((row) => ({ repository, digest: row.digest })));
  }
  return removed;
}

/**
 * In a dry run a link survives when it is young or a surviving manifest
 * references it; in a run, the links step has already removed the others.
 */
function linkSurvives(rules: CollectionRules): RawBuilder<unknown> {
  if (!rules.dryRun) return none;
  return sql`and (rb.created_at >= ${rules.before} or exists (select 1 from manifest_references l
    where l.repository_id = rb.repository_id and l.digest = rb.digest and l.kind = 'blob'
      ${holderSurvives(rules, 'l')}))`;
}

function manifestSurvives(rules: CollectionRules): RawBuilder<unknown> {
  if (!simulatesUntagged(rules)) return none;
  return sql`and exists (select 1 from kept k
    where k.repository_id = m.repository_id and k.digest = m.digest)`;
}

/** Nothing holds the blob `b` any more, and its record is old enough. */
function blobIsUnheld(rules: CollectionRules): RawBuilder<unknown> {
  return sql`b.created_at < ${rules.before}
    and not exists (select 1 from repository_blobs rb
      where rb.digest = b.digest ${linkSurvives(rules)})
    and not exists (select 1 from manifest_references mr
      where mr.digest = b.digest ${holderSurvives(rules, 'mr')})
    and not exists (select 1 from manifests m
      where m.digest = b.digest ${manifestSurvives(rules)})`;
}

export async function findCollectableBlobs(
  db: Db,
  rules: CollectionRules,
  cursor: string | undefined,
  limit: number,
): Promise<CollectionPage<BlobRecord>> {
  const after = cursor === undefined ? sql`1 = 1` : sql`b.digest > ${cursor}`;
  const { rows } = await sql<BlobRecord>`
    ${withKept(rules)}
    select b.digest, b.size from blobs b
      where ${after} and ${blobIsUnheld(rules)}
      order by b.digest
      limit ${limit}`.execute(db);
  const items = rows.map((row) => ({ digest: row.digest, size: Number(row.size) }));
  const last = items.at(-1);
  return last && items.length >= limit ? { items, cursor: last.digest } : { items };
}

/** Inside the removal transaction: deletes the records still unheld, returning them. */
export async function removeCollectableBlobs(
  trx: Db,
  rules: CollectionRules,
  candidates: readonly BlobRecord[],
): Promise<BlobRecord[]> {
  if (candidates.length === 0) return [];
  const digests = candidates.map((blob) => blob.digest);
  const { rows } = await sql<BlobRecord>`
    delete from blobs as b
      where b.digest in (${sql.join(digests)}) and ${blobIsUnheld(rules)}
      returning digest, size`.execute(trx);
  return rows.map((row) => ({ digest: row.digest, size: Number(row.size) }));
}

/** Digests among `digests` with no blob record and no manifest. */
export async function findUnknownDigests(db: Db, digests: readonly string[]): Promise<string[]> {
  if (digests.length === 0) return [];
  const known = new Set<string>();
  const blobs = await db
    .selectFrom('blobs')
    .select('digest')
    .where('digest', 'in', digests)
    .execute();
  const manifests = await db
    .selectFrom('manifests')
    .select('digest')
    .where('digest', 'in', digests)
    .execute();
  for (const row of [...blobs, ...manifests]) known.add(row.digest);
  return digests.filter((digest) => !known.has(digest));
}

/** Candidates' repositories by id, with their digests; unknown repositories are left out. */
async function groupByRepository(
  db: Db,
  candidates: readonly { repository: string; digest: string }[],
): Promise<[number, string[], string][]> {
  const byName = new Map<string, string[]>();
  for (const { repository, digest } of candidates) {
    const list = byName.get(repository) ?? [];
    list.push(digest);
    byName.set(repository, list);
  }
  if (byName.size === 0) return [];
  const rows = await db
    .selectFrom('repositories')
    .select(['id', 'name'])
    .where('name', 'in', [...byName.keys()])
    .execute();
  return rows.map((row) => [row.id, byName.get(row.name) ?? [], row.name]);
}
