import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
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
