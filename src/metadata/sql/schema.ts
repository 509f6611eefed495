import { sql, type Generated, type Kysely, type Transaction } from 'kysely';

/**
 * The metadata store's tables, as Kysely sees them, and the migrations that
 * create them. Both engines get the same tables; the few differences (how an
 * id is generated, how names sort) are in `columnTypes`.
 *
 * Times are integer milliseconds since the epoch and sizes are bytes, both
 * `bigint` (PostgreSQL's int8; SQLite stores any integer in 8 bytes). The
 * PostgreSQL driver is set up to return them as numbers (see postgres.ts).
 */

/** The SQL engine under Kysely: all that migrations need to know of it. */
export type SqlDialectName = 'sqlite' | 'postgres';

export interface RepositoriesTable {
  /** A small surrogate key keeps the other tables' keys and indexes short. */
  id: Generated<number>;
  name: string;
}

/**
 * Blobs known registry-wide: the size is a property of the digest. Layers,
 * configs, and (from version 4) manifests' own bytes. `created_at` moves
 * forward each time the bytes are claimed or linked again: garbage
 * collection reads it as the age of the record.
 */
export interface BlobsTable {
  digest: string;
  size: number;
  created_at: number;
}

/**
 * Which repository may serve which blob (DESIGN.md, invariant 3).
 * `created_at` moves forward when the blob is linked again or a client
 * finds it present (refreshBlobLink): the link's age for garbage collection.
 */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject: string | null;
  annotations: string | null;
  created_at: number;
}

export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  digest: string;
  updated_at: number;
}

/**
 * Upload sessions name their repository as text: a session may start before
 * the repository exists, and must not make it exist.
 */
export interface UploadsTable {
  id: string;
  repository: string;
  started_at: number;
  updated_at: number;
}

/** Robot accounts' tokens: only a hash of each secret (src/auth/robots.ts). */
export interface RobotsTable {
  id: string;
  name: string;
  secret_hash: string;
  /** A JSON array of scope strings. */
  scopes: string;
  created_at: number;
  expires_at: number;
}

/** Maintenance leases: one collector or purger at a time (src/registry/lease.ts). */
export interface LeasesTable {
  name: string;
  /** Empty when nobody holds the lease. */
  holder: string;
  expires_at: number;
  completed_at: number | null;
}

export interface SchemaVersionTable {
  version: number;
}

export interface MetadataTables {
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  uploads: UploadsTable;
  robots: RobotsTable;
  leases: LeasesTable;
  berth_schema_version: SchemaVersionTable;
}

type Trx = Transaction<MetadataTables>;
type Dialect = SqlDialectName;
type Migration = (trx: Trx, dialect: Dialect) => Promise<void>;

/** In order; the schema's version is how many have run. Append only. */
const migrations: readonly Migration[] = [
  createInitialSchema,
  createRobotsTable,
  createDigestIndexes,
  createLeasesTable,
];

/** Chosen once: the PostgreSQL advisory lock that serializes migrations. */
const MIGRATION_LOCK_ID = 0x6265727468;

/**
 * Brings the database to the current schema. Safe when several processes
 * start at once: the whole migration runs in one transaction that first
 * takes a lock every other migrating process waits for (PostgreSQL's
 * advisory lock; on SQLite the store begins every transaction with
 * `BEGIN IMMEDIATE`, which takes the database's write lock). DDL is
 * transactional on both engines, so a crash leaves the old version.
 */
export async function migrate(db: Kysely<MetadataTables>, dialect: Dialect) {
  await db.transaction().execute(async (trx) => {
    if (dialect === 'postgres') {
      await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`.execute(trx);
    }
    const current = await readSchemaVersion(trx);
    if (current > migrations.length) {
      throw new Error(
        `Metadata schema version ${current} is newer than this Berth knows: ` +
          `expected at most ${migrations.length}`,
      );
    }
    for (const migration of migrations.slice(current)) {
      await migration(trx, dialect);
    }
    if (current < migrations.length) await writeSchemaVersion(trx, current);
  });
}

async function readSchemaVersion(trx: Trx): Promise<number> {
  await trx.schema
    .createTable('berth_schema_version')
    .ifNotExists()
    .addColumn('version', 'integer', (col) => col.notNull())
    .execute();
  const row = await trx.selectFrom('berth_schema_version').select('version').executeTakeFirst();
  return row?.version ?? 0;
}

async function writeSchemaVersion(trx: Trx, current: number) {
  const version = migrations.length;
  if (current === 0) {
    await trx.insertInto('berth_schema_version').values({ version }).execute();
  } else {
    await trx.updateTable('berth_schema_version').set({ version }).execute();
  }
}

/**
 * The column types that differ between engines. Names sort byte-wise on
 * both: SQLite's default BINARY collation compares UTF-8 bytes, and
 * PostgreSQL gets `COLLATE "C"` on the column, so that its unique index
 * serves `ORDER BY name` and `name > $last` whatever the database's locale.
 */
function columnTypes(dialect: SqlDialectName) {
  const postgres = dialect === 'postgres';
  return {
    sortedText: postgres ? sql`text collate "C"` : sql`text`,
    /** SQLite makes an `integer primary key` the rowid, which it numbers. */
    identity: postgres ? sql`integer generated by default as identity` : sql`integer`,
  };
}

async function createInitialSchema(db: Trx, dialect: Dialect) {
  await createRepositoryTables(db, dialect);
  await createManifestTables(db, dialect);
  await createUploadTable(db);
}

async function createRepositoryTables(db: Trx, dialect: Dialect) {
  const types = columnTypes(dialect);
  await db.schema
    .createTable('repositories')
    .addColumn('id', types.identity, (col) => col.primaryKey())
    .addColumn('name', types.sortedText, (col) => col.notNull().unique())
    .execute();

  await db.schema
    .createTable('blobs')
    .addColumn('digest', 'text', (col) => col.primaryKey())
    .addColumn('size', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .execute();

  await db.schema
    .createTable('repository_blobs')
    .addColumn('repository_id', 'integer', (col) => col.notNull().references('repositories.id'))
    .addColumn('digest', 'text', (col) => col.notNull().references('blobs.digest'))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
    .execute();
  // findBlob (mounts without `from`) and garbage collection look blobs up
  // by digest alone.
  await db.schema
    .createIndex('repository_blobs_digest')
    .on('repository_blobs')
    .column('digest')
    .execute();
}

async function createManifestTables(db: Trx, dialect: Dialect) {
  await createManifestsTable(db);
  await createManifestReferencesTable(db);
  await createTagsTable(db, dialect);
}

async function createManifestsTable(db: Trx) {
  await db.schema
    .createTable('manifests')
    .addColumn('repository_id', 'integer', (col) => col.notNull().references('repositories.id'))
    .addColumn('digest', 'text', (col) => col.notNull())
    .addColumn('media_type', 'text', (col) => col.notNull())
    .addColumn('size', 'bigint', (col) => col.notNull())
    .addColumn('artifact_type', 'text')
    .addColumn('subject', 'text')
    .addColumn('annotations', 'text')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
    .execute();
  // The referrers API: one range of this index, already in digest order.
  await db.schema
    .createIndex('manifests_subject')
    .on('manifests')
    .columns(['repository_id', 'subject', 'digest'])
    .execute();
}

/**
 * What each manifest references. Rows go with their manifest (cascade) so
 * that no reference outlives what declared it; the index on the referenced
 * digest answers "does anything still reference this?" for deletion and
 * garbage collection (DESIGN.md, invariant 4).
 */
async function createManifestReferencesTable(db: Trx) {
  await db.schema
    .createTable('manifest_references')
    .addColumn('repository_id', 'integer', (col) => col.notNull())
    .addColumn('manifest_digest', 'text', (col) => col.notNull())
    .addColumn('digest', 'text', (col) => col.notNull())
    .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('blob', 'manifest')`))
    .addPrimaryKeyConstraint('manifest_references_pk', [
      'repository_id',
      'manifest_digest',
      'digest',
      'kind',
    ])
    .addForeignKeyConstraint(
      'manifest_references_manifest_fk',
      ['repository_id', 'manifest_digest'],
      'manifests',
      ['repository_id', 'digest'],
      (fk) => fk.onDelete('cascade'),
    )
    .execute();
  await db.schema
    .createIndex('manifest_references_digest')
    .on('manifest_references')
    .columns(['repository_id', 'digest'])
    .execute();
}

/** A tag cannot point at a manifest that is not there: a foreign key. */
async function createTagsTable(db: Trx, dialect: Dialect) {
  await db.schema
    .createTable('tags')
    .addColumn('repository_id', 'integer', (col) => col.notNull())
    .addColumn('name', columnTypes(dialect).sortedText, (col) => col.notNull())
    .addColumn('digest', 'text', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
    .addForeignKeyConstraint(
      'tags_manifest_fk',
      ['repository_id', 'digest'],
      'manifests',
      ['repository_id', 'digest'],
      (fk) => fk.onDelete('cascade'),
    )
    .execute();
  // Deleting a manifest deletes the tags that point at it.
  await db.schema
    .createIndex('tags_digest')
    .on('tags')
    .columns(['repository_id', 'digest'])
    .execute();
}

async function createUploadTable(db: Trx) {
  await db.schema
    .createTable('uploads')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('repository', 'text', (col) => col.notNull())
    .addColumn('started_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();
  // Purging abandoned sessions reads the oldest activity first.
  await db.schema.createIndex('uploads_updated_at').on('uploads').column('updated_at').execute();
}

/** Version 2: robot accounts, for access control. */
async function createRobotsTable(db: Trx, dialect: Dialect) {
  await db.schema
    .createTable('robots')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('name', columnTypes(dialect).sortedText, (col) => col.notNull().unique())
    .addColumn('secret_hash', 'text', (col) => col.notNull())
    .addColumn('scopes', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .execute();
}

/**
 * Version 3: manifests and references by digest alone, across repositories.
 * Usage asks, for each digest a repository holds, whether another holds it
 * too (src/metadata/sql/usage-queries.ts); deletion and garbage collection
 * ask whether anything anywhere still references a digest.
 */
async function createDigestIndexes(db: Trx) {
  await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();
  await db.schema
    .createIndex('manifest_references_referenced')
    .on('manifest_references')
    .columns(['digest', 'kind'])
    .execute();
}

/**
 * Version 4: maintenance leases, and a blob record for every manifest's own
 * bytes. Garbage collection keeps bytes that a record claims (claimBlob);
 * manifests pushed from now on claim theirs before writing them.
 */
async function createLeasesTable(db: Trx) {
  await db.schema
    .createTable('leases')
    .addColumn('name', 'text', (col) => col.primaryKey())
    .addColumn('holder', 'text', (col) => col.notNull())
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .addColumn('completed_at', 'bigint')
    .execute();
  // `where true` keeps SQLite from reading the upsert's ON as a join's.
  await sql`
    insert into blobs (digest, size, created_at)
    select digest, max(size), min(created_at) from manifests where true group by digest
    on conflict (digest) do nothing`.execute(db);
}
