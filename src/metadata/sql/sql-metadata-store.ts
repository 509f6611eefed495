import { sql, type Kysely } from 'kysely';

import type {
  BlobRecord,
  ManifestRecord,
  ManifestReference,
  MetadataStore,
  NewManifest,
  Page,
  PutManifestResult,
  UploadSession,
} from '../metadata-store.js';
import { PreparedQuery } from './prepared-query.js';
import { retryTransient } from './retry.js';
import { migrate, type MetadataTables, type SqlDialectName } from './schema.js';

/** What the store needs to know of the engine under Kysely. */
export interface SqlEngine {
  readonly dialect: SqlDialectName;
  /** True when an operation failed only because of other writers and may be tried again. */
  readonly isTransient: (error: unknown) => boolean;
}

/** A database handle or a transaction on it: Kysely's `Transaction` is a `Kysely`. */
type Db = Kysely<MetadataTables>;

/**
 * At most this many values in one `IN (...)` list or one multi-row insert:
 * well below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters, for
 * an index that references thousands of manifests.
 */
const BATCH_SIZE = 500;

const manifestColumns = [
  'm.digest',
  'm.media_type',
  'm.size',
  'm.artifact_type',
  'm.subject',
  'm.annotations',
  'm.created_at',
] as const;

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject: string | null;
  annotations: string | null;
  created_at: number;
}

/**
 * A store on `db`, once a first query has answered: a database that cannot
 * be reached fails here, at start-up. Kysely starts its driver on the first
 * query and closes only a driver it started, so this also makes `close()`
 * always release the file or the connection pool. On failure `db` is closed.
 */
export async function connectSqlMetadataStore(
  db: Db,
  engine: SqlEngine,
): Promise<SqlMetadataStore> {
  try {
    await retryTransient(() => sql`select 1`.execute(db), engine.isTransient);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new SqlMetadataStore(db, engine);
}

/**
 * The metadata store on SQL, one implementation for SQLite and PostgreSQL
 * (sqlite.ts and postgres.ts open it). Writes that touch several rows run
 * in one transaction; every operation is retried while it fails only
 * because another process holds the database (see retry.ts).
 *
 * The one engine-specific step: on PostgreSQL, putManifest locks the rows
 * it found its references in (`FOR SHARE`) until it commits, so that a
 * concurrent unlink or delete cannot remove a reference between the check
 * and the commit. SQLite needs no such lock: its transactions begin with
 * the database's write lock, so writers run one at a time.
 */
export class SqlMetadataStore implements MetadataStore {
  readonly #db: Db;
  readonly #engine: SqlEngine;
  readonly #hot: ReturnType<typeof prepareHotQueries>;

  constructor(db: Db, engine: SqlEngine) {
    this.#db = db;
    this.#engine = engine;
    this.#hot = prepareHotQueries(db);
  }

  async migrate(): Promise<void> {
    await this.#retry(() => migrate(this.#db, this.#engine.dialect));
  }

  async close(): Promise<void> {
    await this.#db.destroy();
  }

  async listRepositories(page: Page): Promise<string[]> {
    if (page.limit <= 0) return [];
    const rows = await this.#retry(() =>
      this.#db
        .selectFrom('repositories as r')
        .select('r.name')
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('manifests as m')
              .select('m.digest')
              .whereRef('m.repository_id', '=', 'r.id'),
          ),
        )
        .$if(page.last !== undefined, (qb) => qb.where('r.name', '>', page.last ?? ''))
        .orderBy('r.name')
        .limit(page.limit)
        .execute(),
    );
    return rows.map((row) => row.name);
  }

  async repositoryExists(repository: string): Promise<boolean> {
    const id = await this.#retry(() => findNonEmptyRepositoryId(this.#db, repository));
    return id !== undefined;
  }

  async linkBlob(repository: string, blob: BlobRecord): Promise<void> {
    const now = Date.now();
    await this.#transaction(async (trx) => {
      await trx
        .insertInto('blobs')
        .values({ digest: blob.digest, size: blob.size, created_at: now })
        .onConflict((oc) => oc.column('digest').doNothing())
        .execute();
      const repositoryId = await ensureRepositoryId(trx, repository);
      await trx
        .insertInto('repository_blobs')
        .values({ repository_id: repositoryId, digest: blob.digest, created_at: now })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .execute();
    });
  }

  async getLinkedBlob(repository: string, digest: string): Promise<BlobRecord | undefined> {
    const params = { repository, digest };
    return this.#retry(() => this.#hot.getLinkedBlob.executeTakeFirst(this.#db, params));
  }

  async findBlob(digest: string): Promise<BlobRecord | undefined> {
    return this.#retry(() =>
      this.#db
        .selectFrom('blobs as b')
        .select(['b.digest', 'b.size'])
        .where('b.digest', '=', digest)
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('repository_blobs as rb')
              .select('rb.digest')
              .where('rb.digest', '=', digest),
          ),
        )
        .executeTakeFirst(),
    );
  }

  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    const result = await this.#retry(() =>
      this.#db
        .deleteFrom('repository_blobs')
        .where('repository_id', '=', repositoryIdOf(this.#db, repository))
        .where('digest', '=', digest)
        .executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }

  async putManifest(
    repository: string,
    manifest: NewManifest,
    tag?: string,
  ): Promise<PutManifestResult> {
    const lockReferences = this.#engine.dialect === 'postgres';
    const now = Date.now();
    return this.#transaction(async (trx) => {
      const existingId = await findRepositoryId(trx, repository);
      const references = uniqueReferences(manifest.references);
      const missing = await findMissingReferences(trx, existingId, references, lockReferences);
      if (missing.length > 0) return { ok: false, missing };

      const repositoryId = existingId ?? (await ensureRepositoryId(trx, repository));
      await upsertManifest(trx, repositoryId, manifest, now);
      await replaceReferences(trx, repositoryId, manifest.digest, references);
      if (tag !== undefined) await upsertTag(trx, repositoryId, tag, manifest.digest, now);
      return { ok: true };
    });
  }

  async getManifest(repository: string, digest: string): Promise<ManifestRecord | undefined> {
    const params = { repository, digest };
    const row = await this.#retry(() => this.#hot.getManifest.executeTakeFirst(this.#db, params));
    return row && toManifestRecord(row);
  }

  async resolveTag(repository: string, tag: string): Promise<ManifestRecord | undefined> {
    const params = { repository, tag };
    const row = await this.#retry(() => this.#hot.resolveTag.executeTakeFirst(this.#db, params));
    return row && toManifestRecord(row);
  }

  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    return this.#transaction(async (trx) => {
      const repositoryId = await findRepositoryId(trx, repository);
      if (repositoryId === undefined) return false;

      // The foreign keys cascade too; deleting explicitly keeps the order plain.
      await trx
        .deleteFrom('tags')
        .where('repository_id', '=', repositoryId)
        .where('digest', '=', digest)
        .execute();
      await trx
        .deleteFrom('manifest_references')
        .where('repository_id', '=', repositoryId)
        .where('manifest_digest', '=', digest)
        .execute();
      const result = await trx
        .deleteFrom('manifests')
        .where('repository_id', '=', repositoryId)
        .where('digest', '=', digest)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const result = await this.#retry(() =>
      this.#db
        .deleteFrom('tags')
        .where('repository_id', '=', repositoryIdOf(this.#db, repository))
        .where('name', '=', tag)
        .executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }

  async listTags(repository: string, page: Page): Promise<string[] | undefined> {
    return this.#retry(async () => {
      const repositoryId = await findNonEmptyRepositoryId(this.#db, repository);
      if (repositoryId === undefined) return undefined;
      if (page.limit <= 0) return [];

      const rows = await this.#db
        .selectFrom('tags')
        .select('name')
        .where('repository_id', '=', repositoryId)
        .$if(page.last !== undefined, (qb) => qb.where('name', '>', page.last ?? ''))
        .orderBy('name')
        .limit(page.limit)
        .execute();
      return rows.map((row) => row.name);
    });
  }

  async listReferrers(
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ManifestRecord[]> {
    const rows = await this.#retry(() =>
      this.#db
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .select(manifestColumns)
        .where('r.name', '=', repository)
        .where('m.subject', '=', subject)
        .$if(artifactType !== undefined, (qb) =>
          qb.where('m.artifact_type', '=', artifactType ?? ''),
        )
        .orderBy('m.digest')
        .execute(),
    );
    return rows.map(toManifestRecord);
  }

  async createUpload(session: UploadSession): Promise<void> {
    await this.#retry(() =>
      this.#db
        .insertInto('uploads')
        .values({
          id: session.id,
          repository: session.repository,
          started_at: session.startedAt,
          updated_at: session.updatedAt,
        })
        .execute(),
    );
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    const row = await this.#retry(() =>
      this.#db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row && toUploadSession(row);
  }

  /** Activity only moves forward: a late, older report from another instance changes nothing. */
  async touchUpload(id: string, at: number): Promise<void> {
    await this.#retry(() =>
      this.#db
        .updateTable('uploads')
        .set({ updated_at: at })
        .where('id', '=', id)
        .where('updated_at', '<', at)
        .execute(),
    );
  }

  async deleteUpload(id: string): Promise<void> {
    await this.#retry(() => this.#db.deleteFrom('uploads').where('id', '=', id).execute());
  }

  /** Oldest activity first. */
  async listUploadsIdleSince(before: number): Promise<UploadSession[]> {
    const rows = await this.#retry(() =>
      this.#db
        .selectFrom('uploads')
        .selectAll()
        .where('updated_at', '<', before)
        .orderBy('updated_at')
        .orderBy('id')
        .execute(),
    );
    return rows.map(toUploadSession);
  }

  #retry<T>(work: () => Promise<T>): Promise<T> {
    return retryTransient(work, (error) => this.#engine.isTransient(error));
  }

  #transaction<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    return this.#retry(() => this.#db.transaction().execute(work));
  }
}

/**
 * The lookups made on every pull, compiled once (see prepared-query.ts):
 * each is one query on primary keys, outside any transaction.
 */
function prepareHotQueries(db: Db) {
  return {
    resolveTag: new PreparedQuery(['repository', 'tag'], (p) =>
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
    getManifest: new PreparedQuery(['repository', 'digest'], (p) =>
      db
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .select(manifestColumns)
        .where('r.name', '=', p.repository)
        .where('m.digest', '=', p.digest),
    ),
    getLinkedBlob: new PreparedQuery(['repository', 'digest'], (p) =>
      db
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .innerJoin('blobs as b', 'b.digest', 'rb.digest')
        .select(['b.digest', 'b.size'])
        .where('r.name', '=', p.repository)
        .where('rb.digest', '=', p.digest),
    ),
  };
}

/** A subquery for a repository's id, for statements that need no other lookup. */
function repositoryIdOf(db: Db, repository: string) {
  return db.selectFrom('repositories').select('id').where('name', '=', repository);
}

async function findRepositoryId(db: Db, repository: string): Promise<number | undefined> {
  const row = await repositoryIdOf(db, repository).executeTakeFirst();
  return row?.id;
}

/** The repository's id when it holds at least one manifest or blob link. */
async function findNonEmptyRepositoryId(db: Db, repository: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('repositories as r')
    .select('r.id')
    .where('r.name', '=', repository)
    .where((eb) =>
      eb.or([
        eb.exists(
          eb
            .selectFrom('manifests as m')
            .select('m.digest')
            .whereRef('m.repository_id', '=', 'r.id'),
        ),
        eb.exists(
          eb
            .selectFrom('repository_blobs as rb')
            .select('rb.digest')
            .whereRef('rb.repository_id', '=', 'r.id'),
        ),
      ]),
    )
    .executeTakeFirst();
  return row?.id;
}

/**
 * The repository's id, creating its row when needed. `ON CONFLICT DO
 * NOTHING` lets two writers create the same repository at once: the second
 * waits for the first and then finds its row.
 */
async function ensureRepositoryId(db: Db, repository: string): Promise<number> {
  const inserted = await db
    .insertInto('repositories')
    .values({ name: repository })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning('id')
    .executeTakeFirst();
  const id = inserted?.id ?? (await findRepositoryId(db, repository));
  if (id === undefined) throw new Error(`Repository "${repository}" vanished while it was created`);
  return id;
}

/** Each reference once, in the order first given: a manifest may list a layer twice. */
function uniqueReferences(references: readonly ManifestReference[]): ManifestReference[] {
  const seen = new Map<string, ManifestReference>();
  for (const { digest, kind } of references) seen.set(`${kind} ${digest}`, { digest, kind });
  return [...seen.values()];
}

async function findMissingReferences(
  db: Db,
  repositoryId: number | undefined,
  references: readonly ManifestReference[],
  lock: boolean,
): Promise<ManifestReference[]> {
  if (repositoryId === undefined || references.length === 0) return [...references];

  const digestsOf = (kind: ManifestReference['kind']) =>
    references.filter((reference) => reference.kind === kind).map(({ digest }) => digest);
  const present = {
    blob: await findLinkedBlobs(db, repositoryId, digestsOf('blob'), lock),
    manifest: await findManifests(db, repositoryId, digestsOf('manifest'), lock),
  };
  return references.filter(({ digest, kind }) => !present[kind].has(digest));
}

async function findLinkedBlobs(db: Db, repositoryId: number, digests: string[], lock: boolean) {
  const found = new Set<string>();
  for (const batch of batches(digests)) {
    const rows = await db
      .selectFrom('repository_blobs')
      .select('digest')
      .where('repository_id', '=', repositoryId)
      .where('digest', 'in', batch)
      .$if(lock, (qb) => qb.forShare())
      .execute();
    for (const row of rows) found.add(row.digest);
  }
  return found;
}

async function findManifests(db: Db, repositoryId: number, digests: string[], lock: boolean) {
  const found = new Set<string>();
  for (const batch of batches(digests)) {
    const rows = await db
      .selectFrom('manifests')
      .select('digest')
      .where('repository_id', '=', repositoryId)
      .where('digest', 'in', batch)
      .$if(lock, (qb) => qb.forShare())
      .execute();
    for (const row of rows) found.add(row.digest);
  }
  return found;
}

/** Stores the manifest; pushing it again refreshes its description and keeps `created_at`. */
async function upsertManifest(db: Db, repositoryId: number, manifest: NewManifest, now: number) {
  await db
    .insertInto('manifests')
    .values({
      repository_id: repositoryId,
      digest: manifest.digest,
      media_type: manifest.mediaType,
      size: manifest.size,
      artifact_type: manifest.artifactType,
      subject: manifest.subject,
      annotations: manifest.annotations,
      created_at: now,
    })
    .onConflict((oc) =>
      oc.columns(['repository_id', 'digest']).doUpdateSet((eb) => ({
        media_type: eb.ref('excluded.media_type'),
        size: eb.ref('excluded.size'),
        artifact_type: eb.ref('excluded.artifact_type'),
        subject: eb.ref('excluded.subject'),
        annotations: eb.ref('excluded.annotations'),
      })),
    )
    .execute();
}

async function replaceReferences(
  db: Db,
  repositoryId: number,
  manifestDigest: string,
  references: readonly ManifestReference[],
) {
  await db
    .deleteFrom('manifest_references')
    .where('repository_id', '=', repositoryId)
    .where('manifest_digest', '=', manifestDigest)
    .execute();
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
async function upsertTag(db: Db, repositoryId: number, tag: string, digest: string, now: number) {
  await db
    .insertInto('tags')
    .values({ repository_id: repositoryId, name: tag, digest, updated_at: now })
    .onConflict((oc) =>
      oc.columns(['repository_id', 'name']).doUpdateSet((eb) => ({
        digest: eb.ref('excluded.digest'),
        updated_at: eb.ref('excluded.updated_at'),
      })),
    )
    .execute();
}

function* batches<T>(items: readonly T[]): Generator<T[]> {
  for (let start = 0; start < items.length; start += BATCH_SIZE) {
    yield items.slice(start, start + BATCH_SIZE);
  }
}

function toManifestRecord(row: ManifestRow): ManifestRecord {
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

function toUploadSession(row: MetadataTables['uploads']): UploadSession {
  return {
    id: row.id,
    repository: row.repository,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
  };
}
