import type { BlobRecord } from '../metadata-store.js';
import { SharedQuery } from './prepared-query.js';
import { ensureRepositoryId, repositoryIdOf, type Db } from './repository-rows.js';

/**
 * Blob records and links as uploads, mounts and pulls write them. Each
 * write moves the record's or the link's time to now: garbage collection
 * keeps whatever was written within its grace window (gc-queries.ts). The
 * functions that take a transaction expect the caller to have taken the
 * collector lock shared (collector-lock.ts).
 */

/** Both upserts run on every blob pushed: compiled once (prepared-query.ts). */
const upsertBlobQuery = new SharedQuery({ digest: '', size: 0, now: 0 }, (db: Db, p) =>
  db
    .insertInto('blobs')
    .values({ digest: p.digest, size: p.size, created_at: p.now })
    .onConflict((oc) =>
      oc.column('digest').doUpdateSet((eb) => ({ created_at: eb.ref('excluded.created_at') })),
    ),
);

const upsertLinkQuery = new SharedQuery({ repositoryId: 0, digest: '', now: 0 }, (db: Db, p) =>
  db
    .insertInto('repository_blobs')
    .values({ repository_id: p.repositoryId, digest: p.digest, created_at: p.now })
    .onConflict((oc) =>
      oc
        .columns(['repository_id', 'digest'])
        .doUpdateSet((eb) => ({ created_at: eb.ref('excluded.created_at') })),
    ),
);

/** Records the blob, or moves its time forward. */
export async function upsertBlob(db: Db, blob: BlobRecord, now: number): Promise<void> {
  await upsertBlobQuery.run(db, { digest: blob.digest, size: blob.size, now });
}

/** Links a recorded blob into a repository, or moves the link's time forward. */
export async function upsertLink(
  db: Db,
  repositoryId: number,
  digest: string,
  now: number,
): Promise<void> {
  await upsertLinkQuery.run(db, { repositoryId, digest, now });
}

/** linkBlob's writes: the record, the repository when new, the link. */
export async function writeLink(
  trx: Db,
  repository: string,
  blob: BlobRecord,
  now: number,
): Promise<void> {
  await upsertBlob(trx, blob, now);
  const repositoryId = await ensureRepositoryId(trx, repository);
  await upsertLink(trx, repositoryId, blob.digest, now);
}

/**
 * Links the blob when `from` links it, or any repository does when `from`
 * is undefined; undefined otherwise. The source is read inside the
 * transaction, so a collection that removed it is seen.
 */
export async function writeMount(
  trx: Db,
  repository: string,
  digest: string,
  from: string | undefined,
  now: number,
): Promise<BlobRecord | undefined> {
  const source = await trx
    .selectFrom('repository_blobs as rb')
    .innerJoin('blobs as b', 'b.digest', 'rb.digest')
    .select(['b.digest', 'b.size'])
    .where('rb.digest', '=', digest)
    .$if(from !== undefined, (qb) => qb.where('rb.repository_id', '=', repositoryIdOf(trx, from!)))
    .limit(1)
    .executeTakeFirst();
  if (!source) return undefined;

  const repositoryId = await ensureRepositoryId(trx, repository);
  await upsertLink(trx, repositoryId, digest, now);
  return { digest: source.digest, size: Number(source.size) };
}

/**
 * One statement: a link that is gone stays gone. Two refreshes at once may
 * leave the earlier time of the two, a few milliseconds apart: harmless.
 */
export async function touchLink(
  db: Db,
  repository: string,
  digest: string,
  at: number,
): Promise<boolean> {
  const result = await db
    .updateTable('repository_blobs')
    .set({ created_at: at })
    .where('repository_id', '=', repositoryIdOf(db, repository))
    .where('digest', '=', digest)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
