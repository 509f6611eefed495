import { createQueryId, type Compilable, type CompiledQuery, type Kysely } from 'kysely';

type Params<Name extends string> = Record<Name, string>;

/** Where a compiled query's parameter comes from: a named value, or a constant. */
type Slot<Name extends string> = { name: Name } | { value: unknown };

/**
 * A query compiled to SQL once and run many times with new parameter values.
 *
 * Kysely builds and compiles a query on every call, which costs more than
 * SQLite takes to answer an indexed lookup; the lookups made on every pull
 * (a tag, a manifest, a blob link) compile once instead. The query is built
 * with a placeholder value per named parameter; compiling it records where
 * each placeholder landed among the parameters, and every run substitutes
 * the real values there. Values that were constants in the query stay.
 *
 * Parameters are strings: placeholders must pass through Kysely as values
 * of the column's type, and the hot lookups only compare names and digests.
 * The Kysely instance must have no plugin that rewrites parameters.
 */
export class PreparedQuery<Name extends string, Row> {
  readonly #compiled: CompiledQuery<Row>;
  readonly #slots: readonly Slot<Name>[];

  constructor(names: readonly Name[], build: (params: Params<Name>) => Compilable<Row>) {
    const entries = names.map((name) => [name, placeholder(name)]);
    const placeholders = Object.fromEntries(entries) as Params<Name>;
    this.#compiled = build(placeholders).compile();
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
  async execute<Tables>(db: Kysely<Tables>, params: Params<Name>): Promise<Row[]> {
    const parameters = this.#slots.map((slot) => ('name' in slot ? params[slot.name] : slot.value));
    const queryId = createQueryId();
    const query: CompiledQuery<Row> = { ...this.#compiled, parameters, queryId };
    const result = await db.executeQuery(query);
    return result.rows;
  }

  /** The first row, if any. */
  async executeTakeFirst<Tables>(
    db: Kysely<Tables>,
    params: Params<Name>,
  ): Promise<Row | undefined> {
    const rows = await this.execute(db, params);
    return rows[0];
  }
}

/** A value no query holds as a constant: names and digests have no NUL byte. */
function placeholder(name: string): string {
  return `\u0000berth-prepared-query:${name}`;
}
