import { collectGarbage } from './garbage-collection.js';

/**
 * Keeps a long upload from piling up received buffers that are already
 * garbage (DESIGN.md, invariant 6: memory stays flat whatever the blob size).
 *
 * Node's HTTP parser copies every piece of a request body into a new buffer
 * of up to 64 KiB. Berth hashes it, writes it and drops it, but V8 frees such
 * buffers only when it next collects its young generation, and it decides
 * when by the small objects it allocates, not by the megabytes those objects
 * hold. One 256 MiB push through one serving thread raised the process's
 * peak resident memory by 37 to 39 MB, of which at most 2 MiB was in use at
 * any time (stream buffers). A young-generation collection after every
 * 8 MiB received frees them in time: the same push then raised the peak by
 * 16 to 18 MB. Each collection took about 65 µs with Berth's heap, so a
 * 256 MiB push spends about 2 ms on them.
 */
const COLLECT_EVERY_BYTES = 8 << 20;

type Collect = () => void;

/** Runs `collect` once every 8 MiB noted. */
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

/** Counts `bytes` more received in this thread; collects young garbage every 8 MiB. */
export function noteReceivedBytes(bytes: number): void {
  cadence.note(bytes);
}
