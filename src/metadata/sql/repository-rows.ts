import type { Kysely } from 'kysely';

import { SharedQuery } from './prepared-query.js';
import type { MetadataTables } from './schema.js';

/** A database, or a transaction on it: Kysely's `Transaction` is a `Kysely`. */
export type Db = Kysely<MetadataTables>;

/** A subquery for a repository's id, for statements that need nothing else. */
export function repositoryIdOf(db: Db, repository: string) {
  return db.selectFrom('repositories').select('id').where('name', '=', repository);
}

/** Asked by every push, several times: compiled once (prepared-query.ts). */
const repositoryIdQuery = new SharedQuery({ repository: '' }, (db: Db, p) =>
  repositoryIdOf(db, p.repository),
);

const insertRepositoryQuery = new SharedQuery({ repository: '' }, (db: Db, p) =>
  db
    .insertInto('repositories')
    .values({ name: p.repository })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning('id'),
);

export async function findRepositoryId(db: Db, repository: string) {
  const row = await repositoryIdQuery.executeTakeFirst(db, { repository });
  return row?.id;
}

/**
 * The repository's id when it holds at least one manifest or blob link. A
 * repository's row outlives its content; without content it is unknown.
 */
export async function findNonEmptyRepositoryId(
  db: Db,
  repository: string,
): Promise<number | undefined> {
  const row = await db
    .selectFrom('repositories as r')
    .select('r.id')
    .where('r.name', '=', repository)
    .where((eb) =>
      eb.or([
        eb.exists(
          eb
            .selectFrom('manifests as m')
            .select('m.digest')
            .whereRef('m.repository_id', '=', 'r.id'),
        ),
        eb.exists(
          eb
            .selectFrom('repository_blobs as rb')
            .select('rb.digest')
            .whereRef('rb.repository_id', '=', 'r.id'),
        ),
      ]),
    )
    .executeTakeFirst();
  return row?.id;
}

/**
 * The repository's id, creating its row when needed. It is looked up first:
 * nearly every push goes to a repository that exists, and an insert that
 * finds a conflict still costs a write. `ON CONFLICT DO NOTHING` lets two
 * writers create the same repository at once: the second waits for the
 * first to commit and then finds its row.
 */
export async function ensureRepositoryId(db: Db, repository: string) {
  const existing = await findRepositoryId(db, repository);
  if (existing !== undefined) return existing;
  const inserted = await insertRepositoryQuery.executeTakeFirst(db, { repository });
  const id = inserted?.id ?? (await findRepositoryId(db, repository));
  if (id === undefined) {
    throw new Error(`Repository "${repository}" vanished while it was created`);
  }
  return id;
}
