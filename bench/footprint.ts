// Footprint: how soon a fresh service is ready (spawn until GET /readyz answers 200) on an empty and on the main
// database, and its resident memory (VmRSS) after sitting idle on the main database.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { service, type BenchContext } from './scenarios.js'
import { withServer } from './servers.js'
import { median } from './stats.js'

export type FootprintResult = {
  /** Medians over the repetitions, in ms. */
  readyMs: { empty: number, filled: number }
  idleRssBytes: number
  peakRssBytes: number
  runs: { emptyReadyMs: number[], filledReadyMs: number[], idleRssBytes: number[] }
}

export async function footprint (ctx: BenchContext): Promise<FootprintResult> {
  const runs: FootprintResult['runs'] = { emptyReadyMs: [], filledReadyMs: [], idleRssBytes: [] }
  let peakRssBytes = 0
  // Alternating, so a disturbance on the machine hits both kinds of start alike.
  for (let rep = 1; rep <= ctx.settings.readyRepetitions; rep++) {
    // A new file each time: the first start of a deployment, migrations included.
    await withServer(() => service(ctx, { databasePath: join(ctx.dir, `empty-${rep}.db`) }), async (server) => {
      runs.emptyReadyMs.push(server.readyMs)
      peakRssBytes = Math.max(peakRssBytes, server.peakRssBytes())
    })
    await withServer(() => service(ctx), async (server) => {
      runs.filledReadyMs.push(server.readyMs)
      await sleep(ctx.settings.idleSeconds * 1000)
      runs.idleRssBytes.push(server.rssBytes())
      peakRssBytes = Math.max(peakRssBytes, server.peakRssBytes())
    })
    ctx.log(`footprint ${rep}/${ctx.settings.readyRepetitions}: ready in ${runs.emptyReadyMs.at(-1)!.toFixed(0)} ms (empty), ` +
      `${runs.filledReadyMs.at(-1)!.toFixed(0)} ms (${ctx.settings.rows.toLocaleString('en-US')} tasks); idle RSS ${(runs.idleRssBytes.at(-1)! / 1024 ** 2).toFixed(0)} MB`)
  }
  return {
    readyMs: { empty: median(runs.emptyReadyMs), filled: median(runs.filledReadyMs) },
    idleRssBytes: median(runs.idleRssBytes),
    peakRssBytes,
    runs
  }
}
