import type {
  BlobRecord,
  CollectableLink,
  CollectableManifest,
  CollectionPage,
  CollectionRules,
  LeaseRecord,
  ManifestDeletion,
  RepositoryDeletion,
} from '../metadata-store.js';
import { touchLink, upsertBlob, writeLink, writeMount } from './blob-links.js';
import { lockAgainstRemoval, lockForRemoval } from './collector-lock.js';
import { deleteManifestTree, deleteRepositoryRows } from './delete-queries.js';
import * as gc from './gc-queries.js';
import { extendLease, giveUpLease, selectLease, upsertLease } from './lease-rows.js';
import type { Db } from './repository-rows.js';
import { retryTransient } from './retry.js';
import { deleteUploadRow } from './upload-rows.js';
import type { SqlEngine } from './sql-metadata-store.js';

/**
 * The metadata store's part in deletes, garbage collection and maintenance
 * leases, which SqlMetadataStore delegates to: each method retried while
 * other writers hold the database, each removal in one transaction that
 * takes the collector lock first (collector-lock.ts).
 */
export class SqlCollection {
  readonly #db: Db;
  readonly #engine: SqlEngine;

  constructor(db: Db, engine: SqlEngine) {
    this.#db = db;
    this.#engine = engine;
  }

  /** linkBlob: the record and the link both move to now. */
  async linkBlob(repository: string, blob: BlobRecord, endingUpload?: string): Promise<void> {
    const now = Date.now();
    await this.#reaching(async (trx) => {
      await writeLink(trx, repository, blob, now);
      if (endingUpload !== undefined) await deleteUploadRow(trx, endingUpload);
    });
  }

  async claimBlob(blob: BlobRecord): Promise<void> {
    const now = Date.now();
    await this.#reaching((trx) => upsertBlob(trx, blob, now));
  }

  async mountBlob(repository: string, digest: string, from?: string) {
    const now = Date.now();
    return this.#reaching((trx) => writeMount(trx, repository, digest, from, now));
  }

  /** Outside any lock: it only moves a time forward, and a link it cannot find stays gone. */
  async refreshBlobLink(repository: string, digest: string, at: number): Promise<boolean> {
    return this.#retry(() => touchLink(this.#db, repository, digest, at));
  }

  async deleteRepository(repository: string): Promise<RepositoryDeletion | undefined> {
    return this.#removing((trx) => deleteRepositoryRows(trx, repository));
  }

  async deleteManifestTree(
    repository: string,
    digest: string,
    { referrers }: { referrers: boolean },
  ): Promise<ManifestDeletion> {
    return this.#removing((trx) => deleteManifestTree(trx, repository, digest, referrers));
  }

  async findCollectableManifests(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<CollectableManifest>> {
    return this.#retry(() => gc.findCollectableManifests(this.#db, rules, cursor, limit));
  }

  async removeCollectableManifests(
    rules: CollectionRules,
    candidates: readonly CollectableManifest[],
  ): Promise<CollectableManifest[]> {
    requireRun(rules);
    return this.#removing((trx) => gc.removeCollectableManifests(trx, rules, candidates));
  }

  async findCollectableLinks(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<CollectableLink>> {
    return this.#retry(() => gc.findCollectableLinks(this.#db, rules, cursor, limit));
  }

  async removeCollectableLinks(
    rules: CollectionRules,
    candidates: readonly CollectableLink[],
  ): Promise<CollectableLink[]> {
    requireRun(rules);
    return this.#removing((trx) => gc.removeCollectableLinks(trx, rules, candidates));
  }

  async findCollectableBlobs(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<BlobRecord>> {
    return this.#retry(() => gc.findCollectableBlobs(this.#db, rules, cursor, limit));
  }

  async removeCollectableBlobs(
    rules: CollectionRules,
    candidates: readonly BlobRecord[],
    removeBytes: (blobs: BlobRecord[]) => Promise<void>,
  ): Promise<BlobRecord[]> {
    requireRun(rules);
    return this.#removing(async (trx) => {
      const removed = await gc.removeCollectableBlobs(trx, rules, candidates);
      if (removed.length > 0) await removeBytes(removed);
      return removed;
    });
  }

  async findUnknownDigests(digests: readonly string[]): Promise<string[]> {
    return this.#retry(() => gc.findUnknownDigests(this.#db, digests));
  }

  async removeUnknownDigests(
    digests: readonly string[],
    removeBytes: (digests: string[]) => Promise<void>,
  ): Promise<string[]> {
    return this.#removing(async (trx) => {
      const unknown = await gc.findUnknownDigests(trx, digests);
      if (unknown.length > 0) await removeBytes(unknown);
      return unknown;
    });
  }

  async acquireLease(
    name: string,
    holder: string,
    expiresAt: number,
    options: { now: number; replacing?: string },
  ): Promise<boolean> {
    return this.#retry(() => upsertLease(this.#db, name, holder, expiresAt, options));
  }

  async renewLease(name: string, holder: string, expiresAt: number): Promise<boolean> {
    return this.#retry(() => extendLease(this.#db, name, holder, expiresAt));
  }

  async releaseLease(name: string, holder: string, completedAt?: number): Promise<void> {
    await this.#retry(() => giveUpLease(this.#db, name, holder, completedAt));
  }

  async getLease(name: string): Promise<LeaseRecord | undefined> {
    return this.#retry(() => selectLease(this.#db, name));
  }

  #retry<T>(work: () => Promise<T>): Promise<T> {
    return retryTransient(work, this.#engine.isTransient);
  }

  /** A transaction that makes content reachable. */
  #reaching<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    const { dialect } = this.#engine;
    return this.#retry(() =>
      this.#db.transaction().execute(async (trx) => {
        await lockAgainstRemoval(trx, dialect);
        return work(trx);
      }),
    );
  }

  /** A transaction that removes content. */
  #removing<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    const { dialect } = this.#engine;
    return this.#retry(() =>
      this.#db.transaction().execute(async (trx) => {
        await lockForRemoval(trx, dialect);
        return work(trx);
      }),
    );
  }
}

function requireRun(rules: CollectionRules): void {
  if (rules.dryRun) throw new Error('A dry run removes nothing: rules.dryRun is set');
}
