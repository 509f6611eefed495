import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

import type { MetadataTables } from './schema.js';
import {
  connectSqlMetadataStore,
  type SqlEngine,
  type SqlMetadataStore,
} from './sql-metadata-store.js';

export interface PostgresMetadataStoreOptions {
  /**
   * Told when an idle pooled connection fails (the server restarted, a
   * network blip). The pool drops that connection and opens another when
   * needed, so this is for logging only. Without it such errors are ignored;
   * left unhandled they would end the process.
   */
  onConnectionError?: (error: Error) => void;
  /** Connections in the pool. Default 10. */
  maxConnections?: number;
}

/**
 * SQLSTATEs after which trying the whole transaction again is the remedy:
 * serialization_failure and deadlock_detected.
 */
const TRANSIENT_STATES = new Set(['40001', '40P01']);

const postgresEngine: SqlEngine = {
  dialect: 'postgres',
  isTransient: (error) =>
    error instanceof pg.DatabaseError &&
    error.code !== undefined &&
    TRANSIENT_STATES.has(error.code),
};

/**
 * Opens the PostgreSQL metadata store at a `postgres://` URL, checking that
 * the server answers; call `migrate()` before use. The database must exist.
 */
export async function openPostgresMetadataStore(
  url: string,
  options: PostgresMetadataStoreOptions = {},
): Promise<SqlMetadataStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    types: { getTypeParser },
  });
  pool.on('error', options.onConnectionError ?? ignore);
  const db = new Kysely<MetadataTables>({ dialect: new PostgresDialect({ pool }) });
  return connectSqlMetadataStore(db, postgresEngine);
}

const INT8_OID: number = pg.types.builtins.INT8;

/**
 * pg returns `bigint` (int8) columns as strings, since they may exceed
 * JavaScript's safe integers. The store's int8 columns hold milliseconds and
 * byte sizes, far below 2^53, so this pool reads them as numbers; a value
 * out of range fails loudly rather than losing precision. The setting
 * belongs to this pool only, not to every pg user in the process.
 */
function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID && format !== 'binary') return parseInt8;
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`PostgreSQL bigint "${text}" is out of range: expected a safe integer`);
  }
  return value;
}

function ignore(): void {}
