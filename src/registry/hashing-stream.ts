import type { Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { RegistryError } from '../errors/registry-error.js';
import { noteReceivedBytes } from './received-bytes.js';

/**
 * A pass-through that feeds every chunk to a hash and counts bytes while
 * they stream to the blob store, so verification needs no second read
 * (STYLE.md, streaming habit 4). With `expected`, it refuses to pass more
 * bytes than announced and fails at the end when fewer arrived, enforcing
 * the size while streaming rather than after buffering (habit 5).
 */
export class HashingStream extends Transform {
  readonly hash: Hash;
  readonly #expected: number | undefined;
  #count = 0;

  constructor(hash: Hash, expected?: number) {
    super({ highWaterMark: 64 << 10 });
    this.hash = hash;
    this.#expected = expected;
  }

  get count(): number {
    return this.#count;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.#count += chunk.length;
    if (this.#expected !== undefined && this.#count > this.#expected) {
      callback(sizeMismatch(this.#expected, this.#count));
      return;
    }
    this.hash.update(chunk);
    noteReceivedBytes(chunk.length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback) {
    if (this.#expected !== undefined && this.#count !== this.#expected) {
      callback(sizeMismatch(this.#expected, this.#count));
      return;
    }
    callback();
  }
}

function sizeMismatch(expected: number, received: number): RegistryError {
  const what = received > expected ? 'more than' : `only ${received} of`;
  return new RegistryError(
    'SIZE_INVALID',
    `Upload body size mismatch: received ${what} the ${expected} bytes announced`,
  );
}

/**
 * Reads a small body of an announced length whole, refusing it as soon as
 * more bytes arrive than announced, and when fewer did (habit 5: the size
 * is enforced while reading; the caller bounds `expected`). For blobs of a
 * few kilobytes, the config and small layers of most images, this costs a
 * fraction of what a pipeline through HashingStream and a file sink does.
 */
export function readAnnouncedBody(body: Readable, expected: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const bytes = Buffer.allocUnsafe(expected);
    let count = 0;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      body.off('data', take);
      body.off('end', finish);
      body.off('error', settle);
      body.off('close', closed);
      if (error) reject(error);
      else resolve(bytes);
    };
    const take = (chunk: Buffer) => {
      if (count + chunk.length > expected)
        return settle(sizeMismatch(expected, count + chunk.length));
      chunk.copy(bytes, count);
      count += chunk.length;
      noteReceivedBytes(chunk.length);
    };
    const finish = () => settle(count === expected ? undefined : sizeMismatch(expected, count));
    // Closed before its end: the client went away (the server's isClientGone knows this error).
    const closed = () => settle(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    body.on('data', take);
    body.on('end', finish);
    body.on('error', settle);
    body.on('close', closed);
  });
}
