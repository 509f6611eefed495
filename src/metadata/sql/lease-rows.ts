import type { LeaseRecord } from '../metadata-store.js';
import type { Db } from './repository-rows.js';

/**
 * Maintenance leases (src/registry/lease.ts). Each write is one statement,
 * atomic on both engines: of two processes taking a free lease at once, the
 * upsert lets exactly one in.
 */

export async function upsertLease(
  db: Db,
  name: string,
  holder: string,
  expiresAt: number,
  { now, replacing }: { now: number; replacing?: string },
): Promise<boolean> {
  await db
    .insertInto('leases')
    .values({ name, holder, expires_at: expiresAt, completed_at: null })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, expires_at: expiresAt })
        .where((eb) =>
          eb.or([
            eb('leases.expires_at', '<=', now),
            eb('leases.holder', '=', holder),
            eb('leases.holder', '=', replacing ?? holder),
          ]),
        ),
    )
    .execute();
  const row = await selectLease(db, name);
  return row?.holder === holder;
}

export async function extendLease(
  db: Db,
  name: string,
  holder: string,
  expiresAt: number,
): Promise<boolean> {
  const result = await db
    .updateTable('leases')
    .set({ expires_at: expiresAt })
    .where('name', '=', name)
    .where('holder', '=', holder)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function giveUpLease(
  db: Db,
  name: string,
  holder: string,
  completedAt: number | undefined,
): Promise<void> {
  await db
    .updateTable('leases')
    .set({ holder: '', expires_at: 0 })
    .$if(completedAt !== undefined, (qb) => qb.set({ completed_at: completedAt ?? null }))
    .where('name', '=', name)
    .where('holder', '=', holder)
    .execute();
}

export async function selectLease(db: Db, name: string): Promise<LeaseRecord | undefined> {
  const row = await db.selectFrom('leases').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) return undefined;
  return {
    name: row.name,
    holder: row.holder,
    expiresAt: Number(row.expires_at),
    completedAt: row.completed_at === null ? null : Number(row.completed_at),
  };
}
