import { isMainThread, workerData } from 'node:worker_threads';
import { RETRY_DEADLINE_MS } from './retry.js';

/**
 * One SQLite writer at a time among the serving threads of this process,
 * waited for without sleeping.
 *
 * SQLite lets one connection write at a time. Without this lock the
 * serving threads' connections meet SQLite's own lock: the loser gets
 * SQLITE_BUSY and retries after a random pause (retry.ts). Pushing small
 * images with 16 pushers, one write in five failed so, and each failure
 * cost a pause of up to tens of milliseconds while the lock had long been
 * free. Here a thread waits on a shared cell instead, with
 * `Atomics.waitAsync`, so its event loop goes on serving and it wakes the
 * moment the holder lets go. Other processes (`berth gc`, a second
 * instance) still meet SQLite's lock and the retries.
 *
 * The lock is held from `BEGIN IMMEDIATE` to `COMMIT` or `ROLLBACK`, or
 * around one writing statement outside a transaction; within a thread,
 * Kysely's connection mutex already lets one query or transaction at a time
 * use the connection, so a thread never asks for the lock it holds.
 */
export class WriteLock {
  /** Cell 0: 0 when free, 1 when held. */
  readonly #cell: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#cell = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#cell.buffer as SharedArrayBuffer;
  }

  async acquire(): Promise<void> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    while (Atomics.compareExchange(this.#cell, 0, 0, 1) !== 0) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`The metadata database stayed locked for ${RETRY_DEADLINE_MS} ms`);
      const wait = waitAsync(this.#cell, 0, 1, left);
      if (!wait.async) continue;
      // A pending waitAsync does not keep Node's event loop alive: a thread
      // with nothing else to do yet (one still opening its stores) would end.
      const keepAlive = setTimeout(() => undefined, left);
      try {
        await wait.value;
      } finally {
        clearTimeout(keepAlive);
      }
    }
  }

  release(): void {
    Atomics.store(this.#cell, 0, 0);
    Atomics.notify(this.#cell, 0, 1);
  }
}

/** In Node since 16; TypeScript's library declares it from ES2024 on, past this project's target. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      cell: Int32Array,
      index: number,
      value: number,
      timeout: number,
    ): { async: false; value: string } | { async: true; value: Promise<string> };
  }
).waitAsync.bind(Atomics);

interface LockData {
  berthSqliteWriteLock?: SharedArrayBuffer;
}

let processLock: WriteLock | undefined;

/**
 * The lock of this process: made by the main thread, and handed to each
 * serving thread in its `workerData` (workers.ts). Every SQLite store of the
 * process shares it, whatever its file: only tests open several.
 */
export function processWriteLock(): WriteLock {
  if (processLock) return processLock;
  const inherited = isMainThread
    ? undefined
    : (workerData as LockData | undefined)?.berthSqliteWriteLock;
  processLock = new WriteLock(inherited ?? new SharedArrayBuffer(4));
  return processLock;
}

/** What a serving thread's `workerData` carries for `processWriteLock`. */
export function writeLockData(): LockData {
  return { berthSqliteWriteLock: processWriteLock().buffer };
}
