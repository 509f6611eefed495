import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/**
 * A writable file at a position: chunks queued together go down in one
 * positional `writev`.
 *
 * Making the bytes durable is the committer's job (an fsync before the
 * rename). Two things were measured here and dropped: starting write-back
 * during the upload stalled the writes beside it (256 MiB push: 347 -> 235
 * MB/s), and several writes in flight at once gained nothing.
 */
export class FileSink extends Writable {
  readonly #handle: FileHandle;
  #position: number;
  #writing: Promise<unknown> = Promise.resolve();
  bytesWritten = 0;

  constructor(handle: FileHandle, position: number, highWaterMark = 1 << 20) {
    super({ highWaterMark });
    this.#handle = handle;
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
    await Promise.allSettled([this.#writing]);
  }

  #writeAll(buffers: Buffer[], callback: (error?: Error) => void) {
    const length = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const writing = this.#handle.writev(buffers, this.#position);
    this.#writing = writing;
    writing.then(({ bytesWritten }) => {
      if (bytesWritten !== length) {
        callback(new Error(`Short write: ${bytesWritten} of ${length} bytes`));
        return;
      }
      this.#position += length;
      this.bytesWritten += length;
      callback();
    }, callback);
  }
}
