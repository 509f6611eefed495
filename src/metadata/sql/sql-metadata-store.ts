import { sql } from 'kysely';

import type {
  BlobRecord,
  CollectableLink,
  CollectableManifest,
  CollectionPage,
  CollectionRules,
  LeaseRecord,
  LinkedBlob,
  ManifestDeletion,
  ManifestRecord,
  MetadataStore,
  NewManifest,
  Page,
  PutManifestOptions,
  PutManifestResult,
  QuotaCheckResult,
  RegistryUsage,
  RepositoryContent,
  RepositoryDeletion,
  RepositoryUsage,
  RobotRecord,
  TagRecord,
  UploadSession,
} from '../metadata-store.js';
import { lockAgainstRemoval } from './collector-lock.js';
import { TagTakenError } from './immutable-tag.js';
import {
  manifestColumns,
  prepareHotLookups,
  toManifestRecord,
  type HotLookups,
} from './manifest-rows.js';
import { removeManifest, writeManifest } from './manifest-writes.js';
import { findNonEmptyRepositoryId, repositoryIdOf, type Db } from './repository-rows.js';
import {
  deleteManifestIfUnneeded,
  deleteTagIfUnchanged,
  selectRepositoryContent,
} from './retention-queries.js';
import { retryTransient } from './retry.js';
import { deleteRobotNamed, insertRobot, selectRobot, selectRobots } from './robot-rows.js';
import { migrate, type SqlDialectName, type UploadsTable } from './schema.js';
import { SqlCollection } from './sql-collection.js';
import { deleteUploadRow, insertUploadRow, selectUploadRow } from './upload-rows.js';
import {
  linkWithinQuota,
  selectRegistryUsage,
  selectRepositoryUsage,
  selectStoredBytes,
} from './usage-queries.js';

/** What the store needs to know of the engine under Kysely. */
export interface SqlEngine {
  readonly dialect: SqlDialectName;
  /** True when an operation failed only because of other writers: try again. */
  readonly isTransient: (error: unknown) => boolean;
  /**
   * A number that moves whenever the database may have changed, by any
   * writer, since this connection last read it; the pull lookups are
   * remembered while it stays put. Undefined where the engine cannot tell
   * cheaply (PostgreSQL): every lookup then asks the database.
   */
  readonly changeStamp?: () => number;
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
 * in one transaction; every operation is tried again while it fails only
 * because another process holds the database (retry.ts). Names sort
 * byte-wise on both engines (schema.ts).
 */
export class SqlMetadataStore implements MetadataStore {
  readonly #db: Db;
  readonly #engine: SqlEngine;
  readonly #hot: HotLookups;
  readonly #collection: SqlCollection;
  readonly #remembered: LookupMemory | undefined;
  /**
   * The last page of tags answered, remembered like the pull lookups: CI
   * systems and deploy tools poll the same tag list again and again. One
   * page (at most 10,000 names) bounds its memory.
   */
  readonly #tagPages: LookupMemory | undefined;

  constructor(db: Db, engine: SqlEngine) {
    this.#db = db;
    this.#engine = engine;
    this.#hot = prepareHotLookups(db);
    this.#collection = new SqlCollection(db, engine);
    this.#remembered = engine.changeStamp && new LookupMemory(engine.changeStamp, 10_000);
    this.#tagPages = engine.changeStamp && new LookupMemory(engine.changeStamp, 1);
  }

  async migrate(): Promise<void> {
    await this.#retry(() => migrate(this.#db, this.#engine.dialect));
  }

  async close(): Promise<void> {
    await this.#db.destroy();
  }

  /** One query on the unique index of names, whatever the number of repositories. */
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

  /** Linking again moves the link's time forward (sql-collection.ts). */
  async linkBlob(repository: string, blob: BlobRecord, endingUpload?: string): Promise<void> {
    await this.#collection.linkBlob(repository, blob, endingUpload);
  }

  async getLinkedBlob(repository: string, digest: string): Promise<LinkedBlob | undefined> {
    const params = { repository, digest };
    const row = await this.#lookup(this.#remembered, `blob\0${repository}\0${digest}`, () =>
      this.#hot.getLinkedBlob.executeTakeFirst(this.#db, params),
    );
    return row && { digest: row.digest, size: row.size, linkedAt: Number(row.linked_at) };
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

  async listRepositoriesLinkingBlob(digest: string, page: Page): Promise<string[]> {
    if (page.limit <= 0) return [];
    const rows = await this.#retry(() =>
      this.#db
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .select('r.name')
        .where('rb.digest', '=', digest)
        .$if(page.last !== undefined, (qb) => qb.where('r.name', '>', page.last ?? ''))
        .orderBy('r.name')
        .limit(page.limit)
        .execute(),
    );
    return rows.map((row) => row.name);
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

  /**
   * On PostgreSQL the rows that satisfy the references stay locked until
   * commit; SQLite's transactions hold the write lock from their start.
   */
  async putManifest(
    repository: string,
    manifest: NewManifest,
    tag?: string,
    { immutableTag = false }: PutManifestOptions = {},
  ): Promise<PutManifestResult> {
    const lockReferences = this.#engine.dialect === 'postgres';
    const options = { lockReferences, now: Date.now(), immutableTag };
    try {
      return await this.#transaction(async (trx) => {
        await lockAgainstRemoval(trx, this.#engine.dialect);
        return writeManifest(trx, repository, manifest, tag, options);
      });
    } catch (error) {
      if (error instanceof TagTakenError) return { ok: false, tagDigest: error.digest };
      throw error;
    }
  }

  async getManifest(repository: string, digest: string) {
    const params = { repository, digest };
    const row = await this.#lookup(this.#remembered, `manifest\0${repository}\0${digest}`, () =>
      this.#hot.getManifest.executeTakeFirst(this.#db, params),
    );
    return row && toManifestRecord(row);
  }

  async resolveTag(repository: string, tag: string) {
    const params = { repository, tag };
    const row = await this.#lookup(this.#remembered, `tag\0${repository}\0${tag}`, () =>
      this.#hot.resolveTag.executeTakeFirst(this.#db, params),
    );
    return row && toManifestRecord(row);
  }

  /** A lookup, answered from `memory` while the database has not changed. */
  async #lookup<Row>(
    memory: LookupMemory | undefined,
    key: string,
    query: () => Promise<Row>,
  ): Promise<Row> {
    if (!memory) return this.#retry(query);
    // Read before the query: a change during it leaves the answer stale.
    const stamp = memory.stamp();
    const known = memory.get(key, stamp);
    if (known) return known.row as Row;
    const row = await this.#retry(query);
    memory.set(key, stamp, row);
    return row;
  }

  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    return this.#transaction((trx) => removeManifest(trx, repository, digest));
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

  /** A copy of the remembered page: the caller may change what it gets. */
  async listTags(repository: string, page: Page): Promise<string[] | undefined> {
    const key = `${repository}\0${page.limit}\0${page.last === undefined ? '\u0001' : page.last}`;
    const tags = await this.#lookup(this.#tagPages, key, () => this.#queryTags(repository, page));
    return tags?.slice();
  }

  /** One try of the tag page's queries; `#lookup` retries it. */
  async #queryTags(repository: string, page: Page): Promise<string[] | undefined> {
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
  }

  /** Ordered by digest, so that every instance answers alike. */
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

  async listRepositoryContent(repository: string): Promise<RepositoryContent> {
    return this.#retry(() => selectRepositoryContent(this.#db, repository));
  }

  async deleteTagIfUnchanged(repository: string, tag: TagRecord): Promise<boolean> {
    return this.#retry(() => deleteTagIfUnchanged(this.#db, repository, tag));
  }

  async deleteUntaggedManifest(
    repository: string,
    digest: string,
    pushedBefore: number,
  ): Promise<boolean> {
    const { dialect } = this.#engine;
    return this.#transaction((trx) =>
      deleteManifestIfUnneeded(trx, dialect, repository, digest, pushedBefore),
    );
  }

  async measureUsage(): Promise<RegistryUsage> {
    return this.#retry(() => selectRegistryUsage(this.#db));
  }

  async measureRepositoryUsage(repository: string): Promise<RepositoryUsage | undefined> {
    return this.#retry(() => selectRepositoryUsage(this.#db, repository));
  }

  async measureStoredBytes(repository: string, digest: string) {
    return this.#retry(() => selectStoredBytes(this.#db, repository, digest));
  }

  async linkBlobWithinQuota(
    repository: string,
    blob: BlobRecord,
    limit: number,
  ): Promise<QuotaCheckResult> {
    const { dialect } = this.#engine;
    return this.#transaction((trx) => linkWithinQuota(trx, dialect, repository, blob, limit));
  }

  async createUpload(session: UploadSession): Promise<void> {
    await this.#retry(() => insertUploadRow(this.#db, session));
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    const row = await this.#retry(() => selectUploadRow(this.#db, id));
    return row && toUploadSession(row);
  }

  /** Activity only moves forward: a late report from another instance changes nothing. */
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
    await this.#retry(() => deleteUploadRow(this.#db, id));
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

  async createRobot(robot: RobotRecord): Promise<boolean> {
    return this.#retry(() => insertRobot(this.#db, robot));
  }

  async getRobot(id: string): Promise<RobotRecord | undefined> {
    return this.#retry(() => selectRobot(this.#db, 'id', id));
  }

  async getRobotByName(name: string): Promise<RobotRecord | undefined> {
    return this.#retry(() => selectRobot(this.#db, 'name', name));
  }

  async listRobots(): Promise<RobotRecord[]> {
    return this.#retry(() => selectRobots(this.#db));
  }

  async deleteRobot(name: string): Promise<boolean> {
    return this.#retry(() => deleteRobotNamed(this.#db, name));
  }

  claimBlob(blob: BlobRecord): Promise<void> {
    return this.#collection.claimBlob(blob);
  }

  mountBlob(repository: string, digest: string, from?: string) {
    return this.#collection.mountBlob(repository, digest, from);
  }

  refreshBlobLink(repository: string, digest: string, at: number): Promise<boolean> {
    return this.#collection.refreshBlobLink(repository, digest, at);
  }

  deleteRepository(repository: string): Promise<RepositoryDeletion | undefined> {
    return this.#collection.deleteRepository(repository);
  }

  deleteManifestTree(
    repository: string,
    digest: string,
    options: { referrers: boolean },
  ): Promise<ManifestDeletion> {
    return this.#collection.deleteManifestTree(repository, digest, options);
  }

  findCollectableManifests(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<CollectableManifest>> {
    return this.#collection.findCollectableManifests(rules, cursor, limit);
  }

  removeCollectableManifests(rules: CollectionRules, candidates: readonly CollectableManifest[]) {
    return this.#collection.removeCollectableManifests(rules, candidates);
  }

  findCollectableLinks(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<CollectableLink>> {
    return this.#collection.findCollectableLinks(rules, cursor, limit);
  }

  removeCollectableLinks(rules: CollectionRules, candidates: readonly CollectableLink[]) {
    return this.#collection.removeCollectableLinks(rules, candidates);
  }

  findCollectableBlobs(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<BlobRecord>> {
    return this.#collection.findCollectableBlobs(rules, cursor, limit);
  }

  removeCollectableBlobs(
    rules: CollectionRules,
    candidates: readonly BlobRecord[],
    removeBytes: (blobs: BlobRecord[]) => Promise<void>,
  ): Promise<BlobRecord[]> {
    return this.#collection.removeCollectableBlobs(rules, candidates, removeBytes);
  }

  findUnknownDigests(digests: readonly string[]): Promise<string[]> {
    return this.#collection.findUnknownDigests(digests);
  }

  removeUnknownDigests(
    digests: readonly string[],
    removeBytes: (digests: string[]) => Promise<void>,
  ): Promise<string[]> {
    return this.#collection.removeUnknownDigests(digests, removeBytes);
  }

  acquireLease(
    name: string,
    holder: string,
    expiresAt: number,
    options: { now: number; replacing?: string },
  ): Promise<boolean> {
    return this.#collection.acquireLease(name, holder, expiresAt, options);
  }

  renewLease(name: string, holder: string, expiresAt: number): Promise<boolean> {
    return this.#collection.renewLease(name, holder, expiresAt);
  }

  releaseLease(name: string, holder: string, completedAt?: number): Promise<void> {
    return this.#collection.releaseLease(name, holder, completedAt);
  }

  getLease(name: string): Promise<LeaseRecord | undefined> {
    return this.#collection.getLease(name);
  }

  #retry<T>(work: () => Promise<T>): Promise<T> {
    return retryTransient(work, this.#engine.isTransient);
  }

  #transaction<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    return this.#retry(() => this.#db.transaction().execute(work));
  }
}

function toUploadSession(row: UploadsTable): UploadSession {
  return {
    id: row.id,
    repository: row.repository,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Lookups' answers (a tag, a manifest, a blob link, a page of tags), kept
 * while the database's change stamp stays put. A cluster rollout asks for the same few
 * tags thousands of times between two pushes; each answer then costs one
 * read of the stamp instead of a query (about 15% of a manifest GET). Any
 * write, by this connection or another, moves the stamp and so retires
 * every answer at once; nothing is served that the database no longer says.
 */
class LookupMemory {
  readonly stamp: () => number;
  /** Entries kept at most; past it the memory starts again empty. */
  readonly #limit: number;
  readonly #entries = new Map<string, { stamp: number; row: unknown }>();
  /** The stamp of every entry held: older answers are dropped, not kept until the limit. */
  #stamp = -1;

  constructor(stamp: () => number, limit: number) {
    this.stamp = stamp;
    this.#limit = limit;
  }

  /** The entry when it was stored under `stamp`; the hot path allocates nothing. */
  get(key: string, stamp: number): { readonly row: unknown } | undefined {
    const entry = this.#entries.get(key);
    return entry?.stamp === stamp ? entry : undefined;
  }

  /**
   * Keeps an answer read under `stamp`. A newer stamp retires every entry at
   * once, so that a run of pushes, which moves the stamp with each write,
   * leaves no dead answers behind for the garbage collector to promote.
   * An answer older than the entries held is not kept.
   */
  set(key: string, stamp: number, row: unknown): void {
    if (stamp < this.#stamp) return;
    if (stamp > this.#stamp || this.#entries.size >= this.#limit) {
      this.#entries.clear();
      this.#stamp = stamp;
    }
    this.#entries.set(key, { stamp, row });
  }
}
