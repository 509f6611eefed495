import type { Readable } from 'node:stream';

/**
 * The blob store: content-addressed bytes. Layers, configs and manifests'
 * bytes, each stored once under its digest however many repositories hold
 * it, plus the staging area where uploads grow until they are committed.
 *
 * A driver knows nothing of repositories, tags or verification: the
 * registry layer hashes and counts what streams in and only asks the driver
 * to commit bytes whose digest it has verified (DESIGN.md, invariant 1).
 * Every driver passes the shared suite in test/unit/blob-store-suite.ts.
 */

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/** What garbage collection needs to know of a committed blob it found no record of. */
export interface BlobInfo {
  size: number;
  /** When its bytes were last written, in milliseconds since the epoch. */
  modifiedAt: number;
}

/** An upload's staging area, as upload purging sees it. */
export interface StagedUpload {
  id: string;
  size: number;
  /** When bytes last arrived, in milliseconds since the epoch. */
  modifiedAt: number;
}

/** What a sweep of temporary files removed, or would remove in a dry run. */
export interface SweepResult {
  files: number;
  bytes: number;
}

/** A committed blob opened for positional reads. */
export interface BlobFile {
  readonly size: number;
  /** Reads up to `length` bytes at `position` into `buffer`; resolves with the count read. */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface BlobStore {
  /** A short description for the start-up log, e.g. `filesystem /var/lib/berth`. */
  readonly description: string;

  /** The size of a committed blob, or undefined when it is not stored. */
  stat(digest: string): Promise<number | undefined>;
  /** Streams a committed blob, or part of it. Rejects with code ENOENT when absent. */
  read(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * Opens a committed blob for positional reads, when the driver can. The
   * pull path then reads into two buffers it reuses, instead of allocating
   * a buffer per chunk as a stream does. Rejects with code ENOENT when absent.
   */
  open?(digest: string): Promise<BlobFile>;
  /** Reads a small committed blob (a manifest) whole. */
  readAll(digest: string): Promise<Buffer>;
  /** Stores small bytes (a manifest, a small blob) whose digest the caller has computed. */
  write(digest: string, bytes: Uint8Array): Promise<void>;
  /** Removes a committed blob; absent blobs are not an error. */
  delete(digest: string): Promise<void>;
  /** Every committed blob's digest, for garbage collection. */
  list(): AsyncIterable<string>;
  /** A committed blob's size and age, or undefined when it is not stored. */
  inspect(digest: string): Promise<BlobInfo | undefined>;

  /**
   * The number of bytes staged so far, or undefined when the session has no
   * staging area: none was made yet, or it was committed or removed.
   */
  uploadSize(id: string): Promise<number | undefined>;
  /**
   * Appends a stream to the staged bytes, which must currently hold exactly
   * `offset` bytes; at offset 0 the staging area is made when absent, so a
   * session that never receives bytes costs the store nothing. Resolves
   * with the new size once a later read of the staging area sees the
   * bytes; they need be durable only once committed.
   * On error or abort the staged bytes are truncated back to `offset`.
   */
  appendUpload(id: string, offset: number, source: Readable, signal?: AbortSignal): Promise<number>;
  /** Streams the staged bytes, to rebuild a hash after a restart. */
  readUpload(id: string): Promise<Readable>;
  /**
   * Makes verified staged bytes durable and moves them to their digest
   * atomically; the session's staging area is gone after.
   */
  commitUpload(id: string, digest: string): Promise<void>;
  /** Removes a session's staging area; absent is not an error. */
  abortUpload(id: string): Promise<void>;
  /** Every staging area, whether or not a session still owns it: for upload purging. */
  listUploads(): AsyncIterable<StagedUpload>;
  /**
   * Removes the driver's own temporary files last written before `before`
   * (left behind by a crash while small bytes were being written); with
   * `dryRun`, only counts them. Drivers without such files leave it out.
   */
  sweepTemporaryFiles?(before: number, dryRun: boolean): Promise<SweepResult>;
}
