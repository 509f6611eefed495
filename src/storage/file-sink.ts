import { closeSync, write } from 'node:fs';
import { Writable } from 'node:stream';
import { directBlock, directSlab, openDirect, takeAlignedBuffer } from './direct-writes.js';
import { returnBuffers, takeBuffer } from './spare-buffers.js';

/** What an upload may hold queued in memory before its source waits. */
const QUEUED_BYTES = 64 << 10;

/** Below this many bytes an upload writes the chunks it receives as they are. */
const COPY_FROM_BYTES = 256 << 10;

/**
 * A writable file descriptor at a position. Past its first 256 KiB, every
 * chunk is copied into one of two 1 MiB buffers kept between uploads
 * (spare-buffers.ts); a full buffer goes down in one positional write while
 * the other fills. Given the file's path, full buffers at aligned positions
 * go down with O_DIRECT (direct-writes.ts), the rest through the page cache.
 *
 * Why copy: Node's HTTP parser hands over each piece of a body in a new
 * buffer of up to 64 KiB. One that is still queued or being written when V8
 * collects its young generation twice moves to the old generation, and V8
 * counts such external memory towards the old generation's limit: a
 * 256 MiB push made V8 mark the whole heap 17 times and its helper threads
 * spend 200 to 370 ms of CPU doing it. Copied, each piece dies at once
 * (docs/performance.md).
 *
 * Nothing here flushes; the blob store does once, at the commit
 * (FilesystemBlobStore.commitUpload). Three things were measured here and
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
  /** How many bytes the buffer being filled takes before it is written. */
  #capacity = directSlab;
  /** Bytes handed to this sink so far. */
  #taken = 0;
  /** The path, for direct writes; their descriptor once opened, closed only at the end. */
  readonly #directPath: string | undefined;
  #direct: number | undefined;
  /** Whether the first buffer was taken, which decides on direct writes. */
  #directTried = false;
  /** Whether full aligned buffers still go down directly. */
  #useDirect = false;
  bytesWritten = 0;

  constructor(fd: number, position: number, options: FileSinkOptions = {}) {
    super({ highWaterMark: options.highWaterMark ?? QUEUED_BYTES });
    this.#fd = fd;
    this.#position = position;
    this.#directPath = options.directPath;
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

    if (!this.#filling && !this.#other) {
      this.#filling = this.#takeBuffer();
      this.#fillFrom(this.#position);
    }
    let offset = 0;
    while (offset < chunk.length) {
      this.#filling ??= this.#takeBuffer();
      const room = this.#capacity - this.#filled;
      const copied = chunk.copy(this.#filling, this.#filled, offset, offset + room);
      offset += copied;
      this.#filled += copied;
      if (this.#filled === this.#capacity) await this.#writeFilled();
    }
  }

  /**
   * The first buffer of a sink decides: aligned ones when direct writes
   * work here, spare ones otherwise.
   */
  #takeBuffer(): Buffer {
    if (!this.#directTried && this.#directPath !== undefined) {
      this.#direct = openDirect(this.#directPath);
      this.#useDirect = this.#direct !== undefined;
    }
    this.#directTried = true;
    const aligned = this.#useDirect ? takeAlignedBuffer(this.#directPath!) : undefined;
    if (aligned) return aligned;
    this.#useDirect = false;
    return takeBuffer();
  }

  /** Where direct writes are on, a buffer that starts off the alignment ends on it. */
  #fillFrom(position: number): void {
    this.#filled = 0;
    this.#capacity = directSlab - (this.#useDirect ? position % directBlock : 0);
  }

  /** Starts writing the full buffer and goes on filling the other, once its write is done. */
  async #writeFilled(): Promise<void> {
    await this.#settle();
    const full = this.#filling!;
    this.#writing = this.#writeAt(full.subarray(0, this.#filled));
    this.#filling = this.#other;
    this.#other = full;
    this.#fillFrom(this.#position);
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

  async #writeAt(buffer: Buffer): Promise<Error | undefined> {
    const position = this.#position;
    this.#position += buffer.length;
    const direct = this.#useDirect && buffer.length === directSlab && position % directBlock === 0;
    let error = await writeWhole(direct ? this.#direct! : this.#fd, buffer, position);
    if (direct && error && (error as NodeJS.ErrnoException).code === 'EINVAL') {
      // Refused after all: this buffer and the rest go through the page cache.
      this.#useDirect = false;
      error = await writeWhole(this.#fd, buffer, position);
    }
    if (!error) this.bytesWritten += buffer.length;
    return error;
  }

  #release(): void {
    const buffers = [this.#filling, this.#other].filter((buffer) => buffer !== undefined);
    this.#filling = this.#other = undefined;
    returnBuffers(buffers);
    if (this.#direct !== undefined) closeSync(this.#direct);
    this.#direct = undefined;
    this.#useDirect = false;
  }
}

export interface FileSinkOptions {
  /** What may wait in memory before the source is asked to pause. */
  highWaterMark?: number;
  /** The file's path: allows direct writes of whole aligned buffers. */
  directPath?: string;
}

function writeWhole(fd: number, buffer: Buffer, position: number): Promise<Error | undefined> {
  return new Promise((resolve) => {
    write(fd, buffer, 0, buffer.length, position, (error, written) => {
      if (error) return resolve(error);
      if (written !== buffer.length) {
        return resolve(new Error(`Short write: ${written} of ${buffer.length} bytes`));
      }
      resolve(undefined);
    });
  });
}
