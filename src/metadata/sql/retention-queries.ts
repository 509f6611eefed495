import type { ManifestNode, RepositoryContent, TagRecord } from '../metadata-store.js';
import { removeManifest } from './manifest-writes.js';
import { findRepositoryId, repositoryIdOf, type Db } from './repository-rows.js';
import type { SqlDialectName } from './schema.js';

/**
 * What retention reads and the guarded deletes it makes. Retention plans
 * from a listing that may be stale by the time it deletes; every delete
 * here checks again, in its own statement or transaction, that the row is
 * still as planned and that nothing needs it.
 */

/** Three queries on the repository's primary-key ranges. */
export async function selectRepositoryContent(
  db: Db,
  repository: string,
): Promise<RepositoryContent> {
  const id = await findRepositoryId(db, repository);
  if (id === undefined) return { tags: [], manifests: [] };

  const manifests = await db
    .selectFrom('manifests')
    .select(['digest', 'media_type', 'created_at', 'subject'])
    .where('repository_id', '=', id)
    .execute();
  const edges = await db
    .selectFrom('manifest_references')
    .select(['manifest_digest', 'digest'])
    .where('repository_id', '=', id)
    .where('kind', '=', 'manifest')
    .execute();
  const tags = await db
    .selectFrom('tags')
    .select(['name', 'digest', 'updated_at'])
    .where('repository_id', '=', id)
    .execute();

  const children = new Map<string, string[]>();
  for (const edge of edges) {
    const list = children.get(edge.manifest_digest) ?? [];
    list.push(edge.digest);
    children.set(edge.manifest_digest, list);
  }
  return {
    tags: tags.map((row): TagRecord => ({
      name: row.name,
      digest: row.digest,
      updatedAt: Number(row.updated_at),
    })),
    manifests: manifests.map((row): ManifestNode => ({
      digest: row.digest,
      mediaType: row.media_type,
      createdAt: Number(row.created_at),
      subject: row.subject,
      children: children.get(row.digest) ?? [],
    })),
  };
}

/** One statement: the tag goes only when its digest and time are still the ones read. */
export async function deleteTagIfUnchanged(
  db: Db,
  repository: string,
  tag: TagRecord,
): Promise<boolean> {
  const result = await db
    .deleteFrom('tags')
    .where('repository_id', '=', repositoryIdOf(db, repository))
    .where('name', '=', tag.name)
    .where('digest', '=', tag.digest)
    .where('updated_at', '=', tag.updatedAt)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * Runs inside a transaction. On PostgreSQL the manifest's row is locked
 * first: tagging it or listing it in a new index takes a lock on that row
 * (the tag's foreign key, the index's `FOR SHARE` check), so once the lock
 * is held, what the next statements see cannot change before the delete.
 * SQLite's transactions hold the write lock from their start.
 */
export async function deleteManifestIfUnneeded(
  trx: Db,
  dialect: SqlDialectName,
  repository: string,
  digest: string,
  pushedBefore: number,
): Promise<boolean> {
  const id = await findRepositoryId(trx, repository);
  if (id === undefined) return false;
  const manifest = await trx
    .selectFrom('manifests')
    .select(['created_at', 'subject'])
    .where('repository_id', '=', id)
    .where('digest', '=', digest)
    .$if(dialect === 'postgres', (qb) => qb.forUpdate())
    .executeTakeFirst();
  if (!manifest || Number(manifest.created_at) >= pushedBefore) return false;

  if (await isNeeded(trx, id, digest, manifest.subject)) return false;
  return removeManifest(trx, repository, digest);
}

/** A tag points at it, a manifest lists it, or its subject is in the repository. */
async function isNeeded(db: Db, repositoryId: number, digest: string, subject: string | null) {
  const row = await db
    .selectNoFrom((eb) => [
      eb
        .exists(
          eb
            .selectFrom('tags')
            .select('name')
            .where('repository_id', '=', repositoryId)
            .where('digest', '=', digest),
        )
        .as('tagged'),
      eb
        .exists(
          eb
            .selectFrom('manifest_references')
            .select('digest')
            .where('repository_id', '=', repositoryId)
            .where('digest', '=', digest)
            .where('kind', '=', 'manifest'),
        )
        .as('listed'),
      eb
        .exists(
          eb
            .selectFrom('manifests')
            .select('digest')
            .where('repository_id', '=', repositoryId)
            .where('digest', '=', subject ?? ''),
        )
        .as('subject_present'),
    ])
    .executeTakeFirstOrThrow();
  return Boolean(row.tagged) || Boolean(row.listed) || Boolean(row.subject_present);
}
