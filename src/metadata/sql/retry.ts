import { setTimeout as sleep } from 'node:timers/promises';

/** How long an operation keeps trying while other writers hold the database. */
export const RETRY_DEADLINE_MS = 5_000;

/** The longest single pause between two tries. */
const MAX_PAUSE_MS = 50;

/**
 * Runs `work` until it succeeds, fails for a reason that is not transient,
 * or `RETRY_DEADLINE_MS` has passed. Transient failures are a lock held by
 * another writer (SQLite's SQLITE_BUSY) or a transaction the database chose
 * to abort (PostgreSQL's deadlock and serialization failures): trying again
 * later is the documented remedy for both. Pauses grow exponentially with
 * full jitter, so that contending processes do not retry in lockstep.
 * `work` must be safe to run again: a transaction that failed rolled back.
 */
export async function retryTransient<T>(
  work: () => Promise<T>,
  isTransient: (error: unknown) => boolean,
): Promise<T> {
  const deadline = Date.now() + RETRY_DEADLINE_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isTransient(error) || Date.now() >= deadline) throw error;
      await sleep(Math.random() * Math.min(2 ** attempt, MAX_PAUSE_MS));
    }
  }
}
