import {
  createQueryId,
  type Compilable,
  type CompiledQuery,
  type Kysely,
  type QueryResult,
} from 'kysely';

/** Named parameter values. A value left undefined is bound as NULL. */
type Params = Record<string, unknown>;

/** Where a compiled query's parameter comes from: a named value, or a constant. */
type Slot<Name> = { name: Name } | { value: unknown };

/**
 * A query compiled to SQL once and run many times with new parameter values.
 *
 * Kysely builds and compiles a query on every call, which costs more than
 * SQLite takes to answer an indexed lookup or to write a row; the lookups
 * made on every pull and the writes made on every push compile once
 * instead. The query is built with a placeholder per named parameter;
 * compiling it records where each placeholder landed among the parameters,
 * and every run substitutes the real values there. Values that were
 * constants in the query stay.
 *
 * Placeholders are strings whatever the column's type: Kysely passes values
 * through to the engine without looking at them, and the engine only ever
 * sees the real ones. So the query's shape must not depend on a value: an
 * insert binds every column it names, NULL for an undefined value, where
 * Kysely would leave an undefined column out. The Kysely instance must have
 * no plugin that rewrites parameters.
 */
export class PreparedQuery<P extends Params, Row> {
  readonly #compiled: CompiledQuery<Row>;
  readonly #slots: readonly Slot<keyof P>[];

  /** `shape` names the parameters; its values serve only to type them. */
  constructor(shape: P, build: (params: P) => Compilable<Row>) {
    const names = Object.keys(shape);
    const entries = names.map((name) => [name, placeholder(name)]);
    const placeholders = Object.fromEntries(entries) as Record<string, string>;
    this.#compiled = build(placeholders as unknown as P).compile();
    this.#slots = this.#compiled.parameters.map((value) => {
      const name = names.find((candidate) => placeholders[candidate] === value);
      return name === undefined ? { value } : { name };
    });
    for (const name of names) {
      if (!this.#slots.some((slot) => 'name' in slot && slot.name === name)) {
        const { sql } = this.#compiled;
        throw new Error(`Prepared query parameter "${name}" is unused: ${sql}`);
      }
    }
  }

  /** Runs the query on `db` (which must use the dialect it was built with). */
  async run<Tables>(db: Kysely<Tables>, params: P): Promise<QueryResult<Row>> {
    const parameters = this.#slots.map((slot) =>
      'name' in slot ? (params[slot.name] ?? null) : slot.value,
    );
    const queryId = createQueryId();
    const query: CompiledQuery<Row> = { ...this.#compiled, parameters, queryId };
    return db.executeQuery(query);
  }

  /** The rows it answers. */
  async execute<Tables>(db: Kysely<Tables>, params: P): Promise<Row[]> {
    return (await this.run(db, params)).rows;
  }

  /** The first row, if any. */
  async executeTakeFirst<Tables>(db: Kysely<Tables>, params: P): Promise<Row | undefined> {
    const rows = await this.execute(db, params);
    return rows[0];
  }
}

/**
 * A prepared query written once for every dialect, compiled for a dialect
 * the first time it runs on it. For the writes of every push, which run on
 * transactions as well as on the store's database: a transaction shares
 * its database's dialect adapter, which keys the compiled query.
 */
export class SharedQuery<Tables, P extends Params, Row> {
  readonly #shape: P;
  readonly #build: (db: Kysely<Tables>, params: P) => Compilable<Row>;
  readonly #byAdapter = new WeakMap<object, PreparedQuery<P, Row>>();

  /** `shape` names the parameters; its values serve only to type them. */
  constructor(shape: P, build: (db: Kysely<Tables>, params: P) => Compilable<Row>) {
    this.#shape = shape;
    this.#build = build;
  }

  async run(db: Kysely<Tables>, params: P): Promise<QueryResult<Row>> {
    return this.#on(db).run(db, params);
  }

  async execute(db: Kysely<Tables>, params: P): Promise<Row[]> {
    return this.#on(db).execute(db, params);
  }

  async executeTakeFirst(db: Kysely<Tables>, params: P): Promise<Row | undefined> {
    return this.#on(db).executeTakeFirst(db, params);
  }

  #on(db: Kysely<Tables>): PreparedQuery<P, Row> {
    const adapter = db.getExecutor().adapter;
    let prepared = this.#byAdapter.get(adapter);
    if (!prepared) {
      prepared = new PreparedQuery(this.#shape, (params) => this.#build(db, params));
      this.#byAdapter.set(adapter, prepared);
    }
    return prepared;
  }
}

/** A value no query holds as a constant: names and digests have no NUL byte. */
function placeholder(name: string): string {
  return `\u0000berth-prepared-query:${name}`;
}
