import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8's own collections, asked for where Berth knows better than V8's
 * heuristics when garbage piles up (received-bytes.ts, heap-growth.ts).
 *
 * V8 offers them only behind `--expose-gc`; set here, the flag installs `gc`
 * in contexts made afterwards (and in serving threads, which start later),
 * so `berth serve` needs no extra command-line flag.
 */

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
