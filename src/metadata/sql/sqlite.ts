import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  type SqliteDatabase,
  type SqliteDialectConfig,
  type SqliteStatement,
} from 'kysely';

import { retryTransient } from './retry.js';
import { processWriteLock, type WriteLock } from './write-lock.js';
import type { MetadataTables } from './schema.js';
import {
  connectSqlMetadataStore,
  type SqlEngine,
  type SqlMetadataStore,
} from './sql-metadata-store.js';

/** Prepared statements kept per connection: every distinct SQL text the store runs, and then some. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Opens the SQLite metadata store at `path`, creating the file and its
 * directory when needed; call `migrate()` before use.
 *
 * Several processes of one machine may open the same file. WAL lets readers
 * go on while one writer writes; `synchronous=NORMAL` is WAL's usual
 * setting: a power loss may forget the last commits, never corrupt the file.
 *
 * `busy_timeout` is 0 on purpose. better-sqlite3 is synchronous, so SQLite's
 * own busy wait would sleep on the event loop: every request of the process
 * would stall behind one write, and a second connection in the same process
 * (tests, tools) could never release the lock it waits for. A write that
 * finds the database locked fails at once with SQLITE_BUSY instead, and the
 * store waits asynchronously and tries again for up to five seconds
 * (retry.ts). Transactions begin with `BEGIN IMMEDIATE`, which takes the
 * write lock first: a deferred transaction that read and then wanted to
 * write could find its snapshot stale, which no waiting repairs.
 */
export async function openSqliteMetadataStore(path: string): Promise<SqlMetadataStore> {
  await mkdir(dirname(path), { recursive: true });
  const database = new Database(path, { timeout: 0 });
  try {
    await retryTransient(() => Promise.resolve().then(() => configure(database)), isBusy);
  } catch (error) {
    database.close();
    throw error;
  }
  const writes = { count: 0 };
  const dialect = new ImmediateSqliteDialect({ database: cacheStatements(database, writes) });
  const db = new Kysely<MetadataTables>({ dialect });
  const engine: SqlEngine = {
    dialect: 'sqlite',
    isTransient: isBusy,
    changeStamp: changeStampOf(database, writes),
  };
  return connectSqlMetadataStore(db, engine);
}

/**
 * A number that moves whenever the database may have changed since it was
 * last read through this connection: SQLite's `data_version` moves when
 * another connection (thread, process, `berth gc`) commits, and `writes`
 * counts this connection's own writing statements, which `data_version`
 * leaves out. Reading it costs about what one SQLite call does.
 */
function changeStampOf(database: Database.Database, writes: { count: number }): () => number {
  const dataVersion = database.prepare('PRAGMA data_version').pluck();
  let seenVersion: unknown;
  let seenWrites = -1;
  let stamp = 0;
  return () => {
    const version = dataVersion.get();
    if (version !== seenVersion || writes.count !== seenWrites) {
      seenVersion = version;
      seenWrites = writes.count;
      stamp += 1;
    }
    return stamp;
  };
}

/** Another connection holds the lock this one needs (SQLITE_BUSY and its extended codes). */
function isBusy(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
}

function configure(database: Database.Database): void {
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
}

/**
 * Keeps prepared statements for reuse. Kysely's SQLite driver prepares its
 * SQL on every query, which costs several times what running an indexed
 * lookup does. The store never streams rows (`iterate`), the one use in
 * which a statement may not be shared. The oldest statement goes first.
 */
function cacheStatements(database: Database.Database, writes: { count: number }): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
      let statement = statements.get(sql);
      if (statement === undefined) {
        const oldest = statements.keys().next();
        if (statements.size >= STATEMENT_CACHE_SIZE && !oldest.done)
          statements.delete(oldest.value);
        const prepared = database.prepare(sql);
        statement = readsOnly(sql) ? prepared : countingWrites(prepared, writes);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

/** A statement that may write, counted each time it runs (changeStampOf). */
function countingWrites(statement: Database.Statement, writes: { count: number }): SqliteStatement {
  return {
    reader: statement.reader,
    all: (parameters) => {
      writes.count += 1;
      return statement.all(parameters);
    },
    run: (parameters) => {
      writes.count += 1;
      return statement.run(parameters);
    },
    iterate: (parameters) => {
      writes.count += 1;
      return statement.iterate(parameters);
    },
  };
}

/**
 * Kysely's SQLite dialect, with transactions that take the write lock when
 * they begin, and writes that wait for the other serving threads' writes
 * (write-lock.ts) instead of failing with SQLITE_BUSY.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, processWriteLock());
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  readonly #lock: WriteLock;
  #connection: LockingConnection | undefined;

  constructor(config: SqliteDialectConfig, lock: WriteLock) {
    super(config);
    this.#lock = lock;
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await super.acquireConnection();
    this.#connection ??= new LockingConnection(connection, this.#lock);
    return this.#connection;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await this.#lock.acquire();
    try {
      await (connection as LockingConnection).runTransactionCommand('begin immediate');
    } catch (error) {
      this.#lock.release();
      throw error;
    }
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // A failed commit is rolled back by Kysely, which releases the lock.
    await (connection as LockingConnection).runTransactionCommand('commit');
    this.#lock.release();
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await (connection as LockingConnection).runTransactionCommand('rollback');
    } finally {
      this.#lock.release();
    }
  }
}

/**
 * The driver's one connection. A statement that may write, run outside a
 * transaction, holds the write lock while it runs; inside a transaction
 * the transaction holds it.
 */
class LockingConnection implements DatabaseConnection {
  readonly #connection: DatabaseConnection;
  readonly #lock: WriteLock;
  #transaction = false;

  constructor(connection: DatabaseConnection, lock: WriteLock) {
    this.#connection = connection;
    this.#lock = lock;
  }

  /** Runs `begin immediate`, `commit` or `rollback`, and notes whether a transaction is open. */
  async runTransactionCommand(command: 'begin immediate' | 'commit' | 'rollback'): Promise<void> {
    await this.#connection.executeQuery(CompiledQuery.raw(command));
    this.#transaction = command === 'begin immediate';
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#transaction || readsOnly(query.sql)) return this.#connection.executeQuery<R>(query);
    await this.#lock.acquire();
    try {
      return await this.#connection.executeQuery<R>(query);
    } finally {
      this.#lock.release();
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.#connection.streamQuery<R>(query, chunkSize);
  }
}

/** A statement that cannot write: the store's reads are all plain selects. */
function readsOnly(sql: string): boolean {
  return /^\s*select\b/i.test(sql);
}
