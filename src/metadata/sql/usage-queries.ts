import { sql, type RawBuilder } from 'kysely';

import type {
  BlobRecord,
  QuotaCheckResult,
  RegistryUsage,
  RepositoryUsage,
} from '../metadata-store.js';
import { upsertBlob, upsertLink } from './blob-links.js';
import { lockAgainstRemoval } from './collector-lock.js';
import { ensureRepositoryId, findRepositoryId, type Db } from './repository-rows.js';
import type { SqlDialectName } from './schema.js';

/**
 * Storage usage and quotas, in a few grouped queries whatever the number of
 * repositories.
 *
 * What a repository holds: the blobs linked into it, the blobs its
 * manifests reference (a blob unlinked by a DELETE still takes space while
 * a manifest references it), and its manifests' own bytes; each digest
 * once. A digest is shared when another repository holds it too, and unique
 * otherwise: deleting the repository would free exactly its unique bytes.
 *
 * Sums are cast to bigint: PostgreSQL's sum of int8 is numeric, which its
 * driver returns as text; the store's pool reads int8 as numbers.
 */

/** `(repository_id, digest, size)` of everything every repository holds, each triple once. */
const allHeld = sql`
  select rb.repository_id, b.digest, b.size
    from repository_blobs rb join blobs b on b.digest = rb.digest
  union
  select mr.repository_id, b.digest, b.size
    from manifest_references mr join blobs b on b.digest = mr.digest
    where mr.kind = 'blob'
  union
  select m.repository_id, m.digest, m.size from manifests m`;

/** `(digest, size)` of what one repository holds, each digest once. */
function heldBy(repositoryId: number): RawBuilder<unknown> {
  return sql`
    select rb.digest, b.size
      from repository_blobs rb join blobs b on b.digest = rb.digest
      where rb.repository_id = ${repositoryId}
    union
    select mr.digest, b.size
      from manifest_references mr join blobs b on b.digest = mr.digest
      where mr.repository_id = ${repositoryId} and mr.kind = 'blob'
    union
    select m.digest, m.size from manifests m where m.repository_id = ${repositoryId}`;
}

interface UsageRow {
  name: string;
  objects: number;
  stored: number;
  unique_bytes: number;
}

interface TotalRow {
  objects: number;
  stored: number;
  shared: number;
}

/** Two scans of the held objects: one grouped by repository, one by digest. */
export async function selectRegistryUsage(db: Db): Promise<RegistryUsage> {
  const perRepository = await sql<UsageRow>`
    with held as (${allHeld}),
    holders as (select digest, count(*) as holders from held group by digest)
    select r.name,
           count(*) as objects,
           cast(sum(h.size) as bigint) as stored,
           cast(sum(case when o.holders = 1 then h.size else 0 end) as bigint) as unique_bytes
      from held h
      join holders o on o.digest = h.digest
      join repositories r on r.id = h.repository_id
      group by r.name
      order by r.name`.execute(db);
  const total = await sql<TotalRow>`
    with held as (${allHeld}),
    objects as (select digest, max(size) as size, count(*) as holders from held group by digest)
    select count(*) as objects,
           cast(coalesce(sum(size), 0) as bigint) as stored,
           cast(coalesce(sum(case when holders > 1 then size else 0 end), 0) as bigint) as shared
      from objects`.execute(db);

  const repositories = perRepository.rows.map(toRepositoryUsage);
  const totals = total.rows[0] ?? { objects: 0, stored: 0, shared: 0 };
  return {
    repositories,
    total: {
      repositories: repositories.length,
      objects: Number(totals.objects),
      storedBytes: Number(totals.stored),
      sharedBytes: Number(totals.shared),
    },
  };
}

/**
 * One repository: its held objects, each looked up by digest (indexed) in
 * the other repositories' links, references and manifests.
 */
export async function selectRepositoryUsage(
  db: Db,
  repository: string,
): Promise<RepositoryUsage | undefined> {
  const id = await findRepositoryId(db, repository);
  if (id === undefined) return undefined;
  const elsewhere = sql`
    exists (select 1 from repository_blobs o
             where o.digest = h.digest and o.repository_id <> ${id})
    or exists (select 1 from manifest_references o
                where o.digest = h.digest and o.kind = 'blob' and o.repository_id <> ${id})
    or exists (select 1 from manifests o
                where o.digest = h.digest and o.repository_id <> ${id})`;
  const result = await sql<Omit<UsageRow, 'name'>>`
    select count(*) as objects,
           cast(coalesce(sum(h.size), 0) as bigint) as stored,
           cast(coalesce(sum(case when ${elsewhere} then 0 else h.size end), 0) as bigint)
             as unique_bytes
      from (${heldBy(id)}) h`.execute(db);
  const row = result.rows[0];
  if (!row || Number(row.objects) === 0) return undefined;
  return toRepositoryUsage({ ...row, name: repository });
}

/** The quota's check: one aggregate over the repository's own rows. */
export async function selectStoredBytes(
  db: Db,
  repository: string,
  digest: string,
): Promise<{ storedBytes: number; holds: boolean }> {
  const id = await findRepositoryId(db, repository);
  if (id === undefined) return { storedBytes: 0, holds: false };
  return storedBytesOf(db, id, digest);
}

/**
 * Links the blob unless the repository would then store more than `limit`.
 * On PostgreSQL the repository's row stays locked until commit, so that
 * quota-checked links to one repository take turns; SQLite's transactions
 * hold the write lock from their start. Runs inside a transaction.
 */
export async function linkWithinQuota(
  trx: Db,
  dialect: SqlDialectName,
  repository: string,
  blob: BlobRecord,
  limit: number,
): Promise<QuotaCheckResult> {
  // Like every write that makes content reachable: a collection either
  // finished before this transaction (and the record below is gone) or
  // waits for it (collector-lock.ts).
  await lockAgainstRemoval(trx, dialect);
  const id = await ensureRepositoryId(trx, repository);
  if (dialect === 'postgres') {
    await trx.selectFrom('repositories').select('id').where('id', '=', id).forUpdate().execute();
  }
  const recorded = await trx
    .selectFrom('blobs')
    .select('digest')
    .where('digest', '=', blob.digest)
    .executeTakeFirst();
  if (!recorded) return { ok: false, gone: true };
  const { storedBytes, holds } = await storedBytesOf(trx, id, blob.digest);
  if (!holds && storedBytes + blob.size > limit) return { ok: false, storedBytes };

  const now = Date.now();
  await upsertBlob(trx, blob, now);
  await upsertLink(trx, id, blob.digest, now);
  return { ok: true };
}

async function storedBytesOf(db: Db, repositoryId: number, digest: string) {
  const result = await sql<{ stored: number; holds: number }>`
    select cast(coalesce(sum(h.size), 0) as bigint) as stored,
           coalesce(max(case when h.digest = ${digest} then 1 else 0 end), 0) as holds
      from (${heldBy(repositoryId)}) h`.execute(db);
  const row = result.rows[0];
  return { storedBytes: Number(row?.stored ?? 0), holds: Number(row?.holds ?? 0) === 1 };
}

function toRepositoryUsage(row: UsageRow): RepositoryUsage {
  const storedBytes = Number(row.stored);
  const uniqueBytes = Number(row.unique_bytes);
  return {
    repository: row.name,
    objects: Number(row.objects),
    storedBytes,
    uniqueBytes,
    sharedBytes: storedBytes - uniqueBytes,
  };
}
