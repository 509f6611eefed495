import { createQueryId, type Compilable, type CompiledQuery, type Kysely } from 'kysely';

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
 */
export class PreparedQuery<Name extends string, Row> {
  readonly #compiled: CompiledQuery<Row>;
  /** For each of the compiled query's parameters: the parameter name, or the constant. */
  readonly #slots: readonly ({ name: Name } | { value: unknown })[];

  constructor(names: readonly Name[], build: (params: Record<Name, string>) => Compilable<Row>) {
    const placeholders = Object.fromEntries(names.map((name) => [name, placeholder(name)]));
    this.#compiled = build(placeholders as Record<Name, string>).compile();
    this.#slots = this.#compiled.parameters.map((value) => {
      const name = names.find((candidate) => placeholders[candidate] === value);
      return name === undefined ? { value } : { name };
    });
    for (const name of names) {
      if (!this.#slots.some((slot) => 'name' in slot && slot.name === name)) {
        throw new Error(`Prepared query parameter "${name}" is not used: ${this.#compiled.sql}`);
      }
    }
  }

  /** Runs the query on `db` (which must use the dialect it was built with). */
  async execute<Tables>(db: Kysely<Tables>, params: Record<Name, string>): Promise<Row[]> {
    const parameters = this.#slots.map((slot) => ('name' in slot ? params[slot.name] : slot.value));
    const query: CompiledQuery<Row> = { ...this.#compiled, parameters, queryId: createQueryId() };
    const result = await db.executeQuery(query);
    return result.rows;
  }

  /** The first row, if any. */
  async executeTakeFirst<Tables>(
    db: Kysely<Tables>,
    params: Record<Name, string>,
  ): Promise<Row | undefined> {
    const rows = await this.execute(db, params);
    return rows[0];
  }
}

/** A value no caller passes: a NUL byte never occurs in names or digests. */
function placeholder(name: string): string {
  return `\u0000berth-prepared-query:${name}`;
}
