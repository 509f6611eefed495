import type { Logger } from '../log/logger.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { Lease } from './lease.js';

/**
 * Upload purging (Distribution's `storage.maintenance.uploadpurging`):
 * removes upload sessions that received nothing for longer than `age`,
 * staging areas that no session owns any more (a crash between creating
 * the staging area and the session, or between removing the two), and the
 * blob store's own temporary files of that age. A client that resumes a
 * purged session gets BLOB_UPLOAD_UNKNOWN and starts again (DESIGN.md,
 * invariant 5: cleanly expired). One purge at a time (lease.ts).
 */

export interface PurgeOptions {
  ageMs: number;
  dryRun: boolean;
  log: Logger;
}

export interface PurgeReport {
  dryRun: boolean;
  /** Sessions idle for longer than the age. */
  sessions: number;
  /** Staging areas without a session. */
  orphans: number;
  /** The blob store's temporary files. */
  temporaryFiles: number;
  bytesFreed: number;
}

export type PurgeOutcome = { ran: true; report: PurgeReport } | { ran: false; reason: string };

export class UploadPurger {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;

  constructor(blobs: BlobStore, metadata: MetadataStore) {
    this.#blobs = blobs;
    this.#metadata = metadata;
  }

  async purge(options: PurgeOptions): Promise<PurgeOutcome> {
    const acquired = await Lease.acquire(this.#metadata, 'uploadpurging');
    if (!acquired.ok)
      return { ran: false, reason: `another purge is running (${acquired.holder})` };
    try {
      return { ran: true, report: await this.#purge(options) };
    } finally {
      await acquired.lease.release(!options.dryRun);
    }
  }

  async #purge({ ageMs, dryRun, log }: PurgeOptions): Promise<PurgeReport> {
    const before = Date.now() - ageMs;
    const report = { dryRun, sessions: 0, orphans: 0, temporaryFiles: 0, bytesFreed: 0 };
    const message = dryRun ? 'upload purging would remove' : 'upload purging removed';

    for (const session of await this.#metadata.listUploadsIdleSince(before)) {
      const size = (await this.#blobs.uploadSize(session.id)) ?? 0;
      // The session first: no request starts writing to a staging area about to go.
      if (!dryRun) await this.#metadata.deleteUpload(session.id);
      if (!dryRun) await this.#blobs.abortUpload(session.id);
      report.sessions += 1;
      report.bytesFreed += size;
      log.info({ kind: 'upload', id: session.id, repository: session.repository, size }, message);
    }

    for await (const staged of this.#blobs.listUploads()) {
      if (staged.modifiedAt >= before || (await this.#metadata.getUpload(staged.id))) continue;
      if (!dryRun) await this.#blobs.abortUpload(staged.id);
      report.orphans += 1;
      report.bytesFreed += staged.size;
      log.info({ kind: 'staging', id: staged.id, size: staged.size }, message);
    }

    const swept = await this.#blobs.sweepTemporaryFiles?.(before, dryRun);
    report.temporaryFiles = swept?.files ?? 0;
    report.bytesFreed += swept?.bytes ?? 0;
    log.info(report, 'upload purging finished');
    return report;
  }
}
