import { write } from 'node:fs';
import { Writable } from 'node:stream';
import { returnBuffers, takeBuffer } from './spare-buffers.js';

/** What an upload may hold queued in memory before its source waits. */
const QUEUED_BYTES = 64 << 10;

/** Below this many bytes an upload writes the chunks it receives as they are. */
const COPY_FROM_BYTES = 256 << 10;

/**
 * A writable file descriptor at a position. Past its first 256 KiB, every
 * chunk is copied into one of two 1 MiB buffers kept between uploads
 * (spare-buffers.ts); a full buffer goes down in one positional write while
 * the other fills.
 *
 * Why copy: Node's HTTP parser hands over each piece of a body in a new
 * buffer of up to 64 KiB. One that is still queued or being written when V8
 * collects its young generation twice moves to the old generation, and V8
 * counts such external memory towards the old generation's limit: a
 * 256 MiB push made V8 mark the whole heap 17 times and its helper threads
 * spend 200 to 370 ms of CPU doing it. Copied, each piece dies at once
 * (docs/performance.md).
 *
 * Writes go to the page cache; the blob store flushes once at the end
 * (FilesystemBlobStore.appendUpload). Three things were measured here and
 * dropped: an early fdatasync every 32 MiB stalled the writes beside it
 * (256 MiB push: 347 -> 235 MB/s); several writes in flight gained nothing;
 * and an O_DSYNC descriptor, flushing every write, was no faster for
 * 256 MiB pushes and slower for chunked ones.
 */
export class FileSink extends Writable {
  readonly #fd: number;
  /** Where the next write goes. */
  #position: number;
  /** The write under way, if any: it resolves to its error. */
  #writing: Promise<Error | undefined> = Promise.resolve(undefined);
  /** The buffer being filled, its fill level, and the other one. */
  #filling: Buffer | undefined;
  #filled = 0;
  #other: Buffer | undefined;
  /** Bytes handed to this sink so far. */
  #taken = 0;
  bytesWritten = 0;

  constructor(fd: number, position: number, highWaterMark = QUEUED_BYTES) {
    super({ highWaterMark });
    this.#fd = fd;
    this.#position = position;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error) => void) {
    this.#take(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error) => void) {
    this.#drain().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void) {
    // The buffers go back only once no write refers to them.
    void this.#writing.then(() => {
      this.#release();
      callback(error);
    });
  }

  /** Resolves when no write is under way, e.g. before truncating after a failure. */
  async settled(): Promise<void> {
    let writing;
    do {
      writing = this.#writing;
      await writing;
    } while (writing !== this.#writing);
  }

  async #take(chunk: Buffer): Promise<void> {
    this.#taken += chunk.length;
    if (!this.#filling && this.#taken < COPY_FROM_BYTES) return this.#writeNow(chunk);

    let offset = 0;
    while (offset < chunk.length) {
      this.#filling ??= takeBuffer();
      const copied = chunk.copy(this.#filling, this.#filled, offset);
      offset += copied;
      this.#filled += copied;
      if (this.#filled === this.#filling.length) await this.#writeFilled();
    }
  }

  /** Starts writing the full buffer and goes on filling the other, once its write is done. */
  async #writeFilled(): Promise<void> {
    await this.#settle();
    const full = this.#filling!;
    this.#writing = this.#writeAt(full.subarray(0, this.#filled));
    this.#filling = this.#other;
    this.#other = full;
    this.#filled = 0;
  }

  async #writeNow(chunk: Buffer): Promise<void> {
    await this.#settle();
    this.#writing = this.#writeAt(chunk);
    await this.#settle();
  }

  async #drain(): Promise<void> {
    if (this.#filling && this.#filled > 0) await this.#writeFilled();
    await this.#settle();
    this.#release();
  }

  /**
   * Waits for the write under way and throws its error. Every write starts
   * right after this, so none starts once the sink is destroyed: its owner
   * may close the descriptor then.
   */
  async #settle(): Promise<void> {
    const error = await this.#writing;
    if (error) throw error;
    if (this.destroyed) throw new Error('Write after the file sink was destroyed');
  }

  #writeAt(buffer: Buffer): Promise<Error | undefined> {
    const position = this.#position;
    this.#position += buffer.length;
    return new Promise((resolve) => {
      write(this.#fd, buffer, 0, buffer.length, position, (error, written) => {
        if (error) return resolve(error);
        if (written !== buffer.length) {
          return resolve(new Error(`Short write: ${written} of ${buffer.length} bytes`));
        }
        this.bytesWritten += written;
        resolve(undefined);
      });
    });
  }

  #release(): void {
    const buffers = [this.#filling, this.#other].filter((buffer) => buffer !== undefined);
    this.#filling = this.#other = undefined;
    returnBuffers(buffers);
  }
}
