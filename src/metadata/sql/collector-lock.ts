import { sql } from 'kysely';

import type { Db } from './repository-rows.js';
import type { SqlDialectName } from './schema.js';

/**
 * How removals and the writes that make content reachable keep out of each
 * other's way (DESIGN.md, invariant 4).
 *
 * Garbage collection and deletes decide what to remove and remove it in one
 * transaction that checks everything again. That check is only as good as
 * what it can see: a push committing at the same moment must either be seen
 * or see the removal. SQLite gives this for free: every transaction begins
 * with `BEGIN IMMEDIATE`, which takes the one write lock, so transactions
 * run one after another. PostgreSQL runs them side by side, and under READ
 * COMMITTED a `NOT EXISTS` may miss a row another transaction is about to
 * commit. There, removing transactions take one advisory lock exclusively
 * and the writes that make content reachable (claiming, linking and
 * mounting blobs, storing manifests, creating repositories) take it shared:
 * writers never wait for one another, only for a removal batch, which is
 * kept short. Each statement after the lock sees every commit made before
 * it (READ COMMITTED takes a new snapshot per statement).
 */

/** Chosen once, beside schema.ts's migration lock. */
const COLLECTOR_LOCK_ID = 0x6265727467;

/** For transactions that remove content; first statement of the transaction. */
export async function lockForRemoval(trx: Db, dialect: SqlDialectName): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`select pg_advisory_xact_lock(${COLLECTOR_LOCK_ID})`.execute(trx);
}

/** For transactions that make content reachable; first statement of the transaction. */
export async function lockAgainstRemoval(trx: Db, dialect: SqlDialectName): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`select pg_advisory_xact_lock_shared(${COLLECTOR_LOCK_ID})`.execute(trx);
}
