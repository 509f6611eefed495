import { writev } from 'node:fs';
import { Writable } from 'node:stream';

/** What an upload may hold queued in memory while writes are under way. */
const QUEUED_BYTES = 4 << 20;

/**
 * Writes of one upload under way at once. ext4 copies a write into the page
 * cache under the file's lock and waits for the disk after releasing it, so
 * a second write copies while the first waits. 256 MiB pushes, three pairs:
 * 433 / 413 / 456 MB/s with two, 355 / 356 / 385 with one.
 */
const WRITES_IN_FLIGHT = 2;

/**
 * A writable file descriptor at a position: chunks that queued while writes
 * were under way go down together in the next positional `writev`. A chunk
 * is acknowledged as soon as its write starts, unless WRITES_IN_FLIGHT are
 * under way already; a failure then fails the next write or the end of the
 * stream, and `bytesWritten` counts only writes that completed.
 *
 * The descriptor is opened with O_DSYNC (FilesystemBlobStore), so each
 * write returns once its bytes are on disk. That makes every acknowledged
 * chunk durable without a separate fsync at commit, and writes of several
 * MiB at once run at the disk's sequential speed (1.1 to 1.3 GB/s here for
 * 8 MiB writes, against 0.3 to 1.4 GB/s for page-cache writes followed by
 * one fsync at the end). Starting write-back with an early fdatasync beside
 * buffered writes was measured to stall them (256 MiB push: 347 -> 235 MB/s).
 */
export class FileSink extends Writable {
  readonly #fd: number;
  #position: number;
  readonly #inFlight = new Set<Promise<void>>();
  #failure: Error | undefined;
  bytesWritten = 0;

  constructor(fd: number, position: number, highWaterMark = QUEUED_BYTES) {
    super({ highWaterMark });
    this.#fd = fd;
    this.#position = position;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error) => void) {
    this.#writeAll([chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void) {
    this.#writeAll(
      chunks.map((entry) => entry.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void) {
    this.settled().then(() => callback(this.#failure), callback);
  }

  /** Resolves when no write is under way, e.g. before truncating after a failure. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  #writeAll(buffers: Buffer[], callback: (error?: Error) => void) {
    if (this.#failure) return callback(this.#failure);
    let length = 0;
    for (const buffer of buffers) length += buffer.length;
    const position = this.#position;
    this.#position += length;
    let acknowledged = false;
    const writing: Promise<void> = new Promise<void>((resolve) => {
      writev(this.#fd, buffers, position, (error, bytesWritten) => {
        this.#inFlight.delete(writing);
        resolve();
        const failure =
          error ??
          (bytesWritten !== length
            ? new Error(`Short write: ${bytesWritten} of ${length} bytes`)
            : undefined);
        if (failure) this.#failure ??= failure;
        else this.bytesWritten += length;
        if (!acknowledged) {
          acknowledged = true;
          callback(failure);
        }
      });
    });
    this.#inFlight.add(writing);
    if (this.#inFlight.size < WRITES_IN_FLIGHT) {
      acknowledged = true;
      callback();
    }
  }
}
