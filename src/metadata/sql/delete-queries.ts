import type { ManifestDeletion, RepositoryDeletion } from '../metadata-store.js';
import { deleteManifestRows } from './manifest-writes.js';
import { findRepositoryId, type Db } from './repository-rows.js';

/**
 * Deletes of repositories and of manifests with their referrers. Each runs
 * inside one transaction that holds the collector lock (collector-lock.ts),
 * so that a concurrent push either lands before and is deleted too, or
 * after and finds the repository gone and its references missing.
 */

export async function deleteRepositoryRows(
  trx: Db,
  repository: string,
): Promise<RepositoryDeletion | undefined> {
  const uploads = await trx
    .deleteFrom('uploads')
    .where('repository', '=', repository)
    .returning('id')
    .execute();
  const repositoryId = await findRepositoryId(trx, repository);
  if (repositoryId === undefined) {
    if (uploads.length === 0) return undefined;
    return { manifests: 0, tags: 0, blobLinks: 0, uploads: uploads.map((row) => row.id) };
  }

  const tags = await trx
    .deleteFrom('tags')
    .where('repository_id', '=', repositoryId)
    .executeTakeFirst();
  await trx.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).execute();
  const manifests = await trx
    .deleteFrom('manifests')
    .where('repository_id', '=', repositoryId)
    .executeTakeFirst();
  const links = await trx
    .deleteFrom('repository_blobs')
    .where('repository_id', '=', repositoryId)
    .executeTakeFirst();
  await trx.deleteFrom('repositories').where('id', '=', repositoryId).execute();
  return {
    manifests: Number(manifests.numDeletedRows),
    tags: Number(tags.numDeletedRows),
    blobLinks: Number(links.numDeletedRows),
    uploads: uploads.map((row) => row.id),
  };
}

/**
 * The manifest, and with `referrers` every manifest whose subject is a
 * deleted one, found level by level; refused, writing nothing, when an
 * index that stays lists one of them.
 */
export async function deleteManifestTree(
  trx: Db,
  repository: string,
  digest: string,
  referrers: boolean,
): Promise<ManifestDeletion> {
  const repositoryId = await findRepositoryId(trx, repository);
  if (repositoryId === undefined) return { ok: false, reason: 'unknown' };
  const target = await trx
    .selectFrom('manifests')
    .select('digest')
    .where('repository_id', '=', repositoryId)
    .where('digest', '=', digest)
    .executeTakeFirst();
  if (!target) return { ok: false, reason: 'unknown' };

  const doomed = referrers ? await withReferrers(trx, repositoryId, digest) : [digest];
  const listing = await findListingIndex(trx, repositoryId, doomed);
  if (listing) return { ok: false, reason: 'referenced', ...listing };

  const { tags } = await deleteManifestRows(trx, repositoryId, doomed);
  return { ok: true, manifests: doomed, tags };
}

/** The digest and its referrers, recursively, each once, the digest first. */
async function withReferrers(trx: Db, repositoryId: number, digest: string): Promise<string[]> {
  const found = new Set([digest]);
  let level = [digest];
  while (level.length > 0) {
    const rows = await trx
      .selectFrom('manifests')
      .select('digest')
      .where('repository_id', '=', repositoryId)
      .where('subject', 'in', level)
      .execute();
    level = rows.map((row) => row.digest).filter((each) => !found.has(each));
    for (const each of level) found.add(each);
  }
  return [...found];
}

/** An index outside `doomed` that lists a manifest in it, if any. */
async function findListingIndex(
  trx: Db,
  repositoryId: number,
  doomed: readonly string[],
): Promise<{ digest: string; index: string } | undefined> {
  const row = await trx
    .selectFrom('manifest_references')
    .select(['digest', 'manifest_digest'])
    .where('repository_id', '=', repositoryId)
    .where('kind', '=', 'manifest')
    .where('digest', 'in', doomed)
    .where('manifest_digest', 'not in', doomed)
    .limit(1)
    .executeTakeFirst();
  return row && { digest: row.digest, index: row.manifest_digest };
}
