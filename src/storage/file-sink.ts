import { writev } from 'node:fs';
import { Writable } from 'node:stream';

/** What an upload may hold queued in memory while a write is under way. */
const QUEUED_BYTES = 4 << 20;

/**
 * A writable file descriptor at a position: chunks that queued while one
 * write was under way go down together in the next positional `writev`.
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
  #writing: Promise<unknown> = Promise.resolve();
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

  /** Resolves when no write is under way, e.g. before truncating after a failure. */
  async settled(): Promise<void> {
    await this.#writing;
  }

  #writeAll(buffers: Buffer[], callback: (error?: Error) => void) {
    let length = 0;
    for (const buffer of buffers) length += buffer.length;
    this.#writing = new Promise<void>((resolve) => {
      writev(this.#fd, buffers, this.#position, (error, bytesWritten) => {
        resolve();
        if (error) return callback(error);
        if (bytesWritten !== length) {
          return callback(new Error(`Short write: ${bytesWritten} of ${length} bytes`));
        }
        this.#position += length;
        this.bytesWritten += length;
        callback();
      });
    });
  }
}
