import { getHeapStatistics } from 'node:v8';
import { collectGarbage } from './garbage-collection.js';

/**
 * Keeps a serving thread's heap near what it really holds under a steady
 * load of small requests (DESIGN.md, invariant 6).
 *
 * A request that waits for the disk (an fsync, a SQLite write behind the
 * lock) outlives two young-generation collections, so V8 promotes its
 * objects to the old generation, where they die soon after. V8 collects the
 * old generation only once it has grown by a factor of its live size, and
 * keeps the pages it grew by. Sixteen pushers of small images grew each
 * thread's old generation from 12-14 MiB to 31-34 MiB, of which about 20 MiB
 * was live, and raised the process's peak by 43 to 51 MiB. A full
 * collection once the heap in use has grown by 12 MiB since the last one,
 * looked at every second, held that rise to 25-27 MiB, and the pushes went
 * as fast (docs/performance.md). A full collection of such a heap takes
 * about 20 ms, so a thread spends at most 2% of its time on them, and only
 * while its heap grows that fast; in that run there were two.
 */
const GROWTH_BYTES = 12 << 20;
const CHECK_EVERY_MS = 1_000;

/** Runs `collect` when `usedBytes` has grown by the allowance since the last collection. */
export class GrowthCheck {
  readonly #usedBytes: () => number;
  readonly #collect: () => void;
  #afterCollection: number;

  constructor(usedBytes: () => number, collect: () => void) {
    this.#usedBytes = usedBytes;
    this.#collect = collect;
    this.#afterCollection = usedBytes();
  }

  check(): void {
    const used = this.#usedBytes();
    // A collection V8 made itself lowers the mark too.
    if (used < this.#afterCollection) this.#afterCollection = used;
    if (used - this.#afterCollection < GROWTH_BYTES) return;
    this.#collect();
    this.#afterCollection = this.#usedBytes();
  }
}

/** Starts the check in this thread, for the thread's life. */
export function watchHeapGrowth(): void {
  const check = new GrowthCheck(
    () => getHeapStatistics().used_heap_size,
    () => collectGarbage('full'),
  );
  setInterval(() => check.check(), CHECK_EVERY_MS).unref();
}
