import type { ManifestRecord } from '../metadata-store.js';
import { PreparedQuery } from './prepared-query.js';
import type { Db } from './repository-rows.js';
import type { ManifestsTable } from './schema.js';

/** The columns of a `ManifestRecord`, from `manifests` aliased `m`. */
export const manifestColumns = [
  'm.digest',
  'm.media_type',
  'm.size',
  'm.artifact_type',
  'm.subject',
  'm.annotations',
  'm.created_at',
] as const;

/** A `manifests` row without its repository: what a lookup returns. */
export type ManifestRow = Omit<ManifestsTable, 'repository_id'>;

export function toManifestRecord(row: ManifestRow): ManifestRecord {
  return {
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    artifactType: row.artifact_type,
    subject: row.subject,
    annotations: row.annotations,
    createdAt: row.created_at,
  };
}

export type HotLookups = ReturnType<typeof prepareHotLookups>;

/**
 * The lookups made on every pull, compiled once (see prepared-query.ts).
 * Each is one query on primary keys and unique indexes, outside any
 * transaction.
 */
export function prepareHotLookups(db: Db) {
  return {
    resolveTag: new PreparedQuery({ repository: '', tag: '' }, (p) =>
      db
        .selectFrom('tags as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .innerJoin('manifests as m', (join) =>
          join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.digest'),
        )
        .select(manifestColumns)
        .where('r.name', '=', p.repository)
        .where('t.name', '=', p.tag),
    ),
    getManifest: new PreparedQuery({ repository: '', digest: '' }, (p) =>
      db
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .select(manifestColumns)
        .where('r.name', '=', p.repository)
        .where('m.digest', '=', p.digest),
    ),
    getLinkedBlob: new PreparedQuery({ repository: '', digest: '' }, (p) =>
      db
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .innerJoin('blobs as b', 'b.digest', 'rb.digest')
        .select(['b.digest', 'b.size', 'rb.created_at as linked_at'])
        .where('r.name', '=', p.repository)
        .where('rb.digest', '=', p.digest),
    ),
  };
}
