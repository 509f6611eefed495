import type { ManifestReference, NewManifest, PutManifestResult } from '../metadata-store.js';
import { placeImmutableTag } from './immutable-tag.js';
import { SharedQuery } from './prepared-query.js';
import { ensureRepositoryId, findRepositoryId, type Db } from './repository-rows.js';

/**
 * The writes of putManifest and deleteManifest, each meant to run inside
 * one transaction that the store opens (and retries).
 */

export interface ManifestWriteOptions {
  /**
   * Lock the rows that satisfy the references until commit (`FOR SHARE`),
   * so that no concurrent transaction removes one between the check and
   * the commit. Needed where writers run side by side (PostgreSQL); SQLite
   * has one writer at a time and no such clause.
   */
  lockReferences: boolean;
  /** The time to record, in milliseconds since the epoch. */
  now: number;
  /** The tag may be created, never moved (immutable-tag.ts). */
  immutableTag?: boolean;
}

/**
 * At most this many values in one `IN (...)` list or one multi-row insert:
 * well below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
 */
const BATCH_SIZE = 500;

/**
 * Checks every reference, then stores the manifest, its references and the
 * tag; writes nothing when a reference is missing (DESIGN.md, invariant 2).
 */
export async function writeManifest(
  trx: Db,
  repository: string,
  manifest: NewManifest,
  tag: string | undefined,
  options: ManifestWriteOptions,
): Promise<PutManifestResult> {
  const existingId = await findRepositoryId(trx, repository);
  const references = uniqueReferences(manifest.references);
  const missing = await findMissing(trx, existingId, references, options.lockReferences);
  if (missing.length > 0) return { ok: false, missing };

  const repositoryId = existingId ?? (await ensureRepositoryId(trx, repository));
  await upsertManifest(trx, repositoryId, manifest, options.now);
  await replaceReferences(trx, repositoryId, manifest.digest, references);
  if (tag !== undefined) {
    const place = options.immutableTag ? placeImmutableTag : upsertTag;
    await place(trx, repositoryId, { tag, digest: manifest.digest, now: options.now });
  }
  return { ok: true };
}

/**
 * Deletes a manifest, the tags on it and its references; false when absent.
 * The foreign keys would cascade too; deleting explicitly keeps it plain.
 */
export async function removeManifest(trx: Db, repository: string, digest: string) {
  const repositoryId = await findRepositoryId(trx, repository);
  if (repositoryId === undefined) return false;
  const { manifests } = await deleteManifestRows(trx, repositoryId, [digest]);
  return manifests > 0;
}

/** Deletes manifests with their references and the tags on them; counts what went. */
export async function deleteManifestRows(
  trx: Db,
  repositoryId: number,
  digests: readonly string[],
): Promise<{ tags: number; manifests: number }> {
  if (digests.length === 0) return { tags: 0, manifests: 0 };
  const tags = await trx
    .deleteFrom('tags')
    .where('repository_id', '=', repositoryId)
    .where('digest', 'in', digests)
    .executeTakeFirst();
  await trx
    .deleteFrom('manifest_references')
    .where('repository_id', '=', repositoryId)
    .where('manifest_digest', 'in', digests)
    .execute();
  const manifests = await trx
    .deleteFrom('manifests')
    .where('repository_id', '=', repositoryId)
    .where('digest', 'in', digests)
    .executeTakeFirst();
  return { tags: Number(tags.numDeletedRows), manifests: Number(manifests.numDeletedRows) };
}

/** Each reference once, in the order first given: a manifest may list a layer twice. */
function uniqueReferences(references: readonly ManifestReference[]): ManifestReference[] {
  const unique = new Map<string, ManifestReference>();
  for (const { digest, kind } of references) unique.set(`${kind} ${digest}`, { digest, kind });
  return [...unique.values()];
}

/** The references that are not in the repository: blobs not linked, manifests not stored. */
async function findMissing(
  db: Db,
  repositoryId: number | undefined,
  references: readonly ManifestReference[],
  lock: boolean,
): Promise<ManifestReference[]> {
  if (repositoryId === undefined || references.length === 0) return [...references];

  const digestsOf = (kind: ManifestReference['kind']) =>
    references.filter((reference) => reference.kind === kind).map(({ digest }) => digest);
  const present = {
    blob: await findPresent(db, 'repository_blobs', repositoryId, digestsOf('blob'), lock),
    manifest: await findPresent(db, 'manifests', repositoryId, digestsOf('manifest'), lock),
  };
  return references.filter(({ digest, kind }) => !present[kind].has(digest));
}

async function findPresent(
  db: Db,
  table: 'repository_blobs' | 'manifests',
  repositoryId: number,
  digests: readonly string[],
  lock: boolean,
): Promise<Set<string>> {
  const present = new Set<string>();
  for (const batch of batches(digests)) {
    const rows = await db
      .selectFrom(table)
      .select('digest')
      .where('repository_id', '=', repositoryId)
      .where('digest', 'in', batch)
      .$if(lock, (qb) => qb.forShare())
      .execute();
    for (const row of rows) present.add(row.digest);
  }
  return present;
}

/** The statements every manifest pushed runs, compiled once (prepared-query.ts). */
const upsertManifestQuery = new SharedQuery(
  {
    repositoryId: 0,
    digest: '',
    mediaType: '',
    size: 0,
    artifactType: null as string | null,
    subject: null as string | null,
    annotations: null as string | null,
    now: 0,
  },
  (db: Db, p) =>
    db
      .insertInto('manifests')
      .values({
        repository_id: p.repositoryId,
        digest: p.digest,
        media_type: p.mediaType,
        size: p.size,
        artifact_type: p.artifactType,
        subject: p.subject,
        annotations: p.annotations,
        created_at: p.now,
      })
      .onConflict((oc) =>
        oc.columns(['repository_id', 'digest']).doUpdateSet((eb) => ({
          media_type: eb.ref('excluded.media_type'),
          size: eb.ref('excluded.size'),
          artifact_type: eb.ref('excluded.artifact_type'),
          subject: eb.ref('excluded.subject'),
          annotations: eb.ref('excluded.annotations'),
        })),
      ),
);

const deleteReferencesQuery = new SharedQuery(
  { repositoryId: 0, manifestDigest: '' },
  (db: Db, p) =>
    db
      .deleteFrom('manifest_references')
      .where('repository_id', '=', p.repositoryId)
      .where('manifest_digest', '=', p.manifestDigest),
);

const upsertTagQuery = new SharedQuery(
  { repositoryId: 0, tag: '', digest: '', now: 0 },
  (db: Db, p) =>
    db
      .insertInto('tags')
      .values({ repository_id: p.repositoryId, name: p.tag, digest: p.digest, updated_at: p.now })
      .onConflict((oc) =>
        oc.columns(['repository_id', 'name']).doUpdateSet((eb) => ({
          digest: eb.ref('excluded.digest'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      ),
);

/** Stores the manifest; pushing it again refreshes its description and keeps `created_at`. */
async function upsertManifest(db: Db, repositoryId: number, manifest: NewManifest, now: number) {
  await upsertManifestQuery.run(db, {
    repositoryId,
    digest: manifest.digest,
    mediaType: manifest.mediaType,
    size: manifest.size,
    artifactType: manifest.artifactType,
    subject: manifest.subject,
    annotations: manifest.annotations,
    now,
  });
}

async function replaceReferences(
  db: Db,
  repositoryId: number,
  manifestDigest: string,
  references: readonly ManifestReference[],
) {
  await deleteReferencesQuery.run(db, { repositoryId, manifestDigest });
  for (const batch of batches(references)) {
    const rows = batch.map(({ digest, kind }) => ({
      repository_id: repositoryId,
      manifest_digest: manifestDigest,
      digest,
      kind,
    }));
    await db.insertInto('manifest_references').values(rows).execute();
  }
}

/** Points the tag at the digest, moving it when it pointed elsewhere. */
async function upsertTag(
  db: Db,
  repositoryId: number,
  { tag, digest, now }: { tag: string; digest: string; now: number },
) {
  await upsertTagQuery.run(db, { repositoryId, tag, digest, now });
}

function* batches<T>(items: readonly T[]): Generator<T[]> {
  for (let start = 0; start < items.length; start += BATCH_SIZE) {
    yield items.slice(start, start + BATCH_SIZE);
  }
}
