// node-postgres, loaded on first use: a replica on SQLite never loads it (~30 modules, ~3 MB of heap, ~80 ms of start-up).
import { createRequire } from 'node:module'
import type pg from 'pg'

const require = createRequire(import.meta.url)
let driver: typeof pg | undefined

/** The pg module (CommonJS: what `import pg from 'pg'` would give), required the first time it is asked for. */
export function pgDriver (): typeof pg {
  driver ??= require('pg') as typeof pg
  return driver
}
