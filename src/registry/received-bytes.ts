import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

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
 *
 * V8 offers the collection only behind `--expose-gc`; set here, the flag
 * installs `gc` in contexts made afterwards (and in serving threads, which
 * start later), so `berth serve` needs no extra command-line flag.
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

let collection: ((options?: { type: 'minor' }) => void) | undefined;

/**
 * One collection of this thread's heap: of its young generation, or of all
 * of it. A full one is `gc()` without options: Node 20's V8 takes
 * `{ type: 'major' }` but then returns within a millisecond, having
 * collected next to nothing.
 */
export function collectGarbage(type: 'minor' | 'full'): void {
  if (!collection) {
    setFlagsFromString('--expose-gc');
    collection = runInNewContext('gc') as typeof collection;
  }
  if (type === 'minor') collection?.({ type });
  else collection?.();
}

/** One young-generation collection of this thread's heap. */
export function collectYoungGeneration(): void {
  collectGarbage('minor');
}

const cadence = new CollectionCadence(collectYoungGeneration);

/** Counts `bytes` more received in this thread; collects young garbage every 8 MiB. */
export function noteReceivedBytes(bytes: number): void {
  cadence.note(bytes);
}
