import { collectGarbage } from './garbage-collection.js';

/**
 * Keeps a long upload from piling up received buffers that are already
 * garbage (DESIGN.md, invariant 6: memory stays flat whatever the blob size).
 *
 * Node's HTTP parser copies every piece of a request body into a new buffer
 * of up to 64 KiB. Berth hashes it, copies it (storage/file-sink.ts) and
 * drops it, but V8 frees such buffers only when it next collects its young
 * generation, and it decides when by the small objects it allocates, not by
 * the megabytes those objects hold. Meanwhile it counts them towards the old
 * generation's limit, whose slack is about 8 MiB, and past that it marks
 * the whole heap. A young-generation collection after every 2 MiB received
 * keeps them below it: a 256 MiB push then made no full collection (17
 * with one every 8 MiB, none with one every 2 MiB, three servers each) and
 * took 0.49 to 0.57 s instead of 0.6. Each collection takes about 70 µs
 * with Berth's heap, so a 256 MiB push spends about 10 ms on them.
 */
const COLLECT_EVERY_BYTES = 2 << 20;

type Collect = () => void;

/** Runs `collect` once every 2 MiB noted. */
export class CollectionCadence {
  readonly #collect: Collect;
  #sinceCollection = 0;

  constructor(collect: Collect) {
    this.#collect = collect;
  }

  note(bytes: number): void {
    this.#sinceCollection += bytes;
    if (this.#sinceCollection < COLLECT_EVERY_BYTES) return;
    this.#sinceCollection = 0;
    this.#collect();
  }
}

const cadence = new CollectionCadence(() => collectGarbage('minor'));

/** Counts `bytes` more received in this thread; collects young garbage every 2 MiB. */
export function noteReceivedBytes(bytes: number): void {
  cadence.note(bytes);
}
