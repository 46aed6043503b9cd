// Entry of the built s2v command (dist/cli/index.js); bin/s2v.js launches it, or src/cli/index.ts via tsx in a fresh checkout.
import { run } from './main.js'

process.exitCode = await run({ argv: process.argv.slice(2), env: process.env })
