import type { UploadSession } from '../metadata-store.js';
import { SharedQuery } from './prepared-query.js';
import type { Db } from './repository-rows.js';
import type { UploadsTable } from './schema.js';

/**
 * Upload sessions' rows. Every blob pushed inserts, reads and deletes one,
 * so these statements are compiled once (prepared-query.ts).
 */

const insertUpload = new SharedQuery(
  { id: '', repository: '', startedAt: 0, updatedAt: 0 },
  (db: Db, p) =>
    db.insertInto('uploads').values({
      id: p.id,
      repository: p.repository,
      started_at: p.startedAt,
      updated_at: p.updatedAt,
    }),
);

const selectUpload = new SharedQuery({ id: '' }, (db: Db, p) =>
  db.selectFrom('uploads').selectAll().where('id', '=', p.id),
);

const removeUpload = new SharedQuery({ id: '' }, (db: Db, p) =>
  db.deleteFrom('uploads').where('id', '=', p.id),
);

export async function insertUploadRow(db: Db, session: UploadSession): Promise<void> {
  await insertUpload.run(db, session);
}

export async function selectUploadRow(db: Db, id: string): Promise<UploadsTable | undefined> {
  return selectUpload.executeTakeFirst(db, { id });
}

export async function deleteUploadRow(db: Db, id: string): Promise<void> {
  await removeUpload.run(db, { id });
}
