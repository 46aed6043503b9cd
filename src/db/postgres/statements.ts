// A repository's SQL on PostgreSQL as named statements: each connection prepares one once, by its name, then only
// binds values; on a pool (one statement, its own transaction) or a transaction's client.
import type pg from 'pg'

/** A pool (one statement, its own transaction) or the client of a transaction. */
export type Queryable = Pick<pg.ClientBase, 'query'>

/** rows and changes of the statements, named `${prefix}.${key}` so two repositories' names never meet. */
export function namedStatements<S extends Record<string, string>> (prefix: string, statements: S) {
  type Name = keyof S & string
  const query = <R extends pg.QueryResultRow>(db: Queryable, name: Name, values: unknown[]) =>
    db.query<R>({ name: `${prefix}.${name}`, text: statements[name] as string, values })
  return {
    /** The rows the statement returns. */
    rows: async <R extends pg.QueryResultRow>(db: Queryable, name: Name, values: unknown[]): Promise<R[]> => (await query<R>(db, name, values)).rows,
    /** How many rows the statement wrote. */
    changes: async (db: Queryable, name: Name, values: unknown[]): Promise<number> => (await query(db, name, values)).rowCount ?? 0
  }
}
