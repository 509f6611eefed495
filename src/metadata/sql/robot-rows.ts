import type { RobotRecord } from '../metadata-store.js';
import type { Db } from './repository-rows.js';
import type { RobotsTable } from './schema.js';

/** Robot accounts' rows (src/auth/robots.ts). */

/** Inserts the robot unless its name is taken; true when inserted. */
export async function insertRobot(db: Db, robot: RobotRecord): Promise<boolean> {
  const inserted = await db
    .insertInto('robots')
    .values({
      id: robot.id,
      name: robot.name,
      secret_hash: robot.secretHash,
      scopes: JSON.stringify(robot.scopes),
      created_at: robot.createdAt,
      expires_at: robot.expiresAt,
    })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
}

export async function selectRobot(
  db: Db,
  column: 'id' | 'name',
  value: string,
): Promise<RobotRecord | undefined> {
  const row = await db
    .selectFrom('robots')
    .selectAll()
    .where(column, '=', value)
    .executeTakeFirst();
  return row && toRobotRecord(row);
}

export async function selectRobots(db: Db): Promise<RobotRecord[]> {
  const rows = await db.selectFrom('robots').selectAll().orderBy('name').execute();
  return rows.map(toRobotRecord);
}

export async function deleteRobotNamed(db: Db, name: string): Promise<boolean> {
  const result = await db.deleteFrom('robots').where('name', '=', name).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

function toRobotRecord(row: RobotsTable): RobotRecord {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}
