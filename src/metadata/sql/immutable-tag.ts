import type { Db } from './repository-rows.js';

/**
 * Immutable tags (`PutManifestOptions.immutableTag`): a tag that may be
 * created, or pushed again on the same digest, never moved.
 */

/** Thrown inside putManifest's transaction to roll it back; the store answers a result. */
export class TagTakenError extends Error {
  readonly digest: string;

  constructor(tag: string, digest: string) {
    super(`Immutable tag "${tag}" points at ${digest}`);
    this.name = 'TagTakenError';
    this.digest = digest;
  }
}

/**
 * Creates the tag, or refreshes its time when it already points at the
 * digest; throws TagTakenError when it points elsewhere. One statement
 * decides, so two pushes racing to create the tag cannot both win: on
 * PostgreSQL the second waits for the first's row and then finds it taken.
 */
export async function placeImmutableTag(
  db: Db,
  repositoryId: number,
  { tag, digest, now }: { tag: string; digest: string; now: number },
): Promise<void> {
  const result = await db
    .insertInto('tags')
    .values({ repository_id: repositoryId, name: tag, digest, updated_at: now })
    .onConflict((oc) =>
      oc
        .columns(['repository_id', 'name'])
        .doUpdateSet((eb) => ({ updated_at: eb.ref('excluded.updated_at') }))
        .where('tags.digest', '=', digest),
    )
    .executeTakeFirst();
  if ((result.numInsertedOrUpdatedRows ?? 0n) > 0n) return;

  const current = await db
    .selectFrom('tags')
    .select('digest')
    .where('repository_id', '=', repositoryId)
    .where('name', '=', tag)
    .executeTakeFirstOrThrow();
  throw new TagTakenError(tag, current.digest);
}
