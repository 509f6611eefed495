import type { Logger } from '../log/logger.js';
import type { CollectionPage, CollectionRules, MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { Lease } from './lease.js';

/**
 * Online garbage collection: removes what nothing references any more while
 * the registry goes on serving (DESIGN.md, invariant 4). In four steps,
 * each making the next one's candidates:
 *
 * 1. with `untagged`, manifests that no tag, no index of their repository
 *    and no present subject holds (an image's signatures and SBOMs stay
 *    while the image does; an index's children while the index does);
 * 2. blob links that no manifest of their repository references;
 * 3. blobs that no repository links and no manifest anywhere references,
 *    nor are any manifest's own bytes: their records, then their files;
 * 4. files in the blob store that no record knows at all (a crash between
 *    the rename of the bytes and their record), by the file's age.
 *
 * Nothing pushed, linked, claimed or refreshed within the grace window is
 * removed: an upload or a manifest push in progress may still commit it.
 * Each step finds candidates page by page without locking, then removes
 * each batch in one short transaction that checks every candidate again
 * (src/metadata/sql/gc-queries.ts), so a push racing the collection either
 * lands first and is kept, or comes after and finds the blob gone
 * (MANIFEST_BLOB_UNKNOWN). Bytes go inside that transaction, before it
 * commits: a push of the same digest waits for it, then writes them anew.
 * A crash leaves records without bytes only for blobs nothing links or
 * references, which no request can reach and the next run removes.
 *
 * One collection at a time across processes and machines (lease.ts).
 *
 * Limitation: untagged manifests that hold one another in a cycle (an index
 * whose subject is one of its own children) are never removed as untagged:
 * each still holds the other. A dry run lists them; a run keeps them.
 * Pushing such a cycle takes a deliberate effort.
 *
 * Limitation: pushing a manifest that exists already keeps its push time
 * (MetadataStore.putManifest), so an untagged, unreferenced manifest older
 * than the grace window, pushed again by digest just before the index that
 * lists it, may be removed in between: the index push then fails with
 * MANIFEST_BLOB_UNKNOWN and succeeds when retried. Blobs have no such gap:
 * a client's HEAD refreshes them (blobs.ts).
 */

/** The configuration's settings (`gc`), for runs that do not name their own. */
export interface CollectionDefaults {
  graceMs: number;
  untagged: boolean;
}

export const defaultCollection: CollectionDefaults = { graceMs: 3_600_000, untagged: false };

export interface CollectionOptions {
  graceMs: number;
  untagged: boolean;
  dryRun: boolean;
  log: Logger;
  /** Told of each item removed, or that would be in a dry run. */
  onItem?: (item: CollectedItem) => void;
  /** Skips the run when a collection completed this recently (scheduled runs of several instances). */
  skipIfCompletedWithinMs?: number;
  signal?: AbortSignal;
}

export type CollectedItem =
  | { kind: 'manifest'; repository: string; digest: string; mediaType: string; size: number }
  | { kind: 'link'; repository: string; digest: string }
  | { kind: 'blob'; digest: string; size: number }
  /** Bytes that no record knew. */
  | { kind: 'file'; digest: string; size: number };

export interface CollectionReport {
  dryRun: boolean;
  untagged: boolean;
  graceMs: number;
  startedAt: string;
  durationMs: number;
  manifests: number;
  links: number;
  blobs: number;
  files: number;
  /** Bytes removed from the blob store, or that would be. */
  bytesFreed: number;
  /** The first items, at most `maxReportedItems`; the log has them all. */
  items: CollectedItem[];
  itemsTruncated: boolean;
}

export type CollectionOutcome =
  { ran: true; report: CollectionReport } | { ran: false; reason: string };

/** Items kept in a report (an HTTP answer); the log lists every one. */
const maxReportedItems = 1000;
const pageSize = 200;
/** Each removal of blobs also removes their files while the transaction is open. */
const blobBatchSize = 100;
/** Digests asked about at once when looking for files no record knows. */
const fileBatchSize = 500;
/** Index levels and referrer chains are shallow; this bounds a pathological depth. */
const maxManifestPasses = 64;

export class GarbageCollector {
  readonly defaults: CollectionDefaults;
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;

  constructor(blobs: BlobStore, metadata: MetadataStore, defaults = defaultCollection) {
    this.#blobs = blobs;
    this.#metadata = metadata;
    this.defaults = defaults;
  }

  /** Runs one collection, unless another holds the lease or one completed recently. */
  async run(options: CollectionOptions): Promise<CollectionOutcome> {
    const recent = await this.#completedRecently(options.skipIfCompletedWithinMs);
    if (recent) return { ran: false, reason: recent };
    const acquired = await Lease.acquire(this.#metadata, 'gc');
    if (!acquired.ok) {
      return { ran: false, reason: `another collection is running (${acquired.holder})` };
    }

    const run = new CollectionRun(this.#blobs, this.#metadata, options, acquired.lease);
    let completed = false;
    try {
      const report = await run.execute();
      completed = !options.dryRun;
      return { ran: true, report };
    } finally {
      await acquired.lease.release(completed);
    }
  }

  async #completedRecently(withinMs: number | undefined): Promise<string | undefined> {
    if (withinMs === undefined) return undefined;
    const completedAt = (await this.#metadata.getLease('gc'))?.completedAt;
    if (completedAt === null || completedAt === undefined) return undefined;
    if (Date.now() - completedAt >= withinMs) return undefined;
    return `a collection completed at ${new Date(completedAt).toISOString()}`;
  }
}

/** One collection's state: its rules, its counts, the lease it runs under. */
class CollectionRun {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #options: CollectionOptions;
  readonly #lease: Lease;
  readonly #rules: CollectionRules;
  readonly #started = Date.now();
  readonly #report: CollectionReport;

  constructor(blobs: BlobStore, metadata: MetadataStore, options: CollectionOptions, lease: Lease) {
    this.#blobs = blobs;
    this.#metadata = metadata;
    this.#options = options;
    this.#lease = lease;
    const { untagged, dryRun, graceMs } = options;
    this.#rules = { before: this.#started - graceMs, untagged, dryRun };
    this.#report = {
      dryRun,
      untagged,
      graceMs,
      startedAt: new Date(this.#started).toISOString(),
      durationMs: 0,
      manifests: 0,
      links: 0,
      blobs: 0,
      files: 0,
      bytesFreed: 0,
      items: [],
      itemsTruncated: false,
    };
  }

  async execute(): Promise<CollectionReport> {
    const { log, dryRun, untagged, graceMs } = this.#options;
    log.info({ dryRun, untagged, graceMs }, 'gc started');

    if (this.#rules.untagged) await this.#collectManifests();
    await this.#collectLinks();
    await this.#collectBlobs();
    await this.#collectFiles();

    const report = this.#report;
    report.durationMs = Date.now() - this.#started;
    const { manifests, links, blobs, files, bytesFreed, durationMs } = report;
    log.info({ dryRun, manifests, links, blobs, files, bytesFreed, durationMs }, 'gc finished');
    return report;
  }

  /** Removing a manifest may free its children and referrers: pass again until none goes. */
  async #collectManifests(): Promise<void> {
    const find = (cursor: string | undefined) =>
      this.#metadata.findCollectableManifests(this.#rules, cursor, pageSize);
    for (let pass = 0; pass < maxManifestPasses; pass++) {
      const before = this.#report.manifests;
      await this.#eachPage(find, async (candidates) => {
        const removed = this.#rules.dryRun
          ? candidates
          : await this.#metadata.removeCollectableManifests(this.#rules, candidates);
        for (const manifest of removed) this.#record({ kind: 'manifest', ...manifest });
      });
      if (this.#rules.dryRun || this.#report.manifests === before) return;
    }
  }

  async #collectLinks(): Promise<void> {
    const find = (cursor: string | undefined) =>
      this.#metadata.findCollectableLinks(this.#rules, cursor, pageSize);
    await this.#eachPage(find, async (candidates) => {
      const removed = this.#rules.dryRun
        ? candidates
        : await this.#metadata.removeCollectableLinks(this.#rules, candidates);
      for (const link of removed) this.#record({ kind: 'link', ...link });
    });
  }

  async #collectBlobs(): Promise<void> {
    const find = (cursor: string | undefined) =>
      this.#metadata.findCollectableBlobs(this.#rules, cursor, blobBatchSize);
    await this.#eachPage(find, async (candidates) => {
      const removed = this.#rules.dryRun
        ? candidates
        : await this.#metadata.removeCollectableBlobs(this.#rules, candidates, (blobs) =>
            this.#removeBytes(blobs.map((blob) => blob.digest)),
          );
      for (const blob of removed) this.#record({ kind: 'blob', ...blob });
    });
  }

  /** Files no record knows, by their age: the grace window applies to the bytes themselves. */
  async #collectFiles(): Promise<void> {
    let batch: string[] = [];
    for await (const digest of this.#blobs.list()) {
      batch.push(digest);
      if (batch.length < fileBatchSize) continue;
      await this.#collectUnknown(batch);
      batch = [];
    }
    await this.#collectUnknown(batch);
  }

  async #collectUnknown(digests: string[]): Promise<void> {
    this.#checkStillOurs();
    const sizes = new Map<string, number>();
    for (const digest of await this.#metadata.findUnknownDigests(digests)) {
      const info = await this.#blobs.inspect(digest);
      if (info && info.modifiedAt < this.#rules.before) sizes.set(digest, info.size);
    }
    if (sizes.size === 0) return;
    const removed = this.#rules.dryRun
      ? [...sizes.keys()]
      : await this.#metadata.removeUnknownDigests([...sizes.keys()], (unknown) =>
          this.#removeBytes(unknown),
        );
    for (const digest of removed)
      this.#record({ kind: 'file', digest, size: sizes.get(digest) ?? 0 });
  }

  async #removeBytes(digests: string[]): Promise<void> {
    for (const digest of digests) await this.#blobs.delete(digest);
  }

  async #eachPage<T>(
    find: (cursor: string | undefined) => Promise<CollectionPage<T>>,
    handle: (items: T[]) => Promise<void>,
  ): Promise<void> {
    let cursor: string | undefined;
    do {
      this.#checkStillOurs();
      const page = await find(cursor);
      if (page.items.length > 0) await handle(page.items);
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  /** Stops between batches when asked to, or when the lease may be someone else's. */
  #checkStillOurs(): void {
    this.#options.signal?.throwIfAborted();
    if (this.#lease.lost) throw new Error('Garbage collection stopped: its lease expired');
  }

  #record(item: CollectedItem): void {
    const report = this.#report;
    if (item.kind === 'manifest') report.manifests += 1;
    if (item.kind === 'link') report.links += 1;
    if (item.kind === 'blob') report.blobs += 1;
    if (item.kind === 'file') report.files += 1;
    if (item.kind === 'blob' || item.kind === 'file') report.bytesFreed += item.size;
    if (report.items.length < maxReportedItems) report.items.push(item);
    else report.itemsTruncated = true;

    const message = this.#rules.dryRun ? 'gc would remove' : 'gc removed';
    this.#options.log.info(item, message);
    this.#options.onItem?.(item);
  }
}
