import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The kinds of V8 collection (perf_hooks' NODE_PERFORMANCE_GC_* constants)
 * that ran while `work` did, as V8 reports them to a performance observer.
 */
export async function collectionKindsDuring(work: () => void): Promise<number[]> {
  const seen: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  try {
    await sleep(10);
    seen.length = 0;
    work();
    // Entries arrive on a later turn of the event loop.
    await sleep(20);
    return seen.map(
      (entry) => (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1,
    );
  } finally {
    observer.disconnect();
  }
}
