// Footprint: how soon a fresh service is ready (spawn until GET /readyz answers 200) on an empty and on the main
// database, and its resident memory (VmRSS) while it sits idle on the main database: early, and once settled.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { service, type BenchContext } from './scenarios.js'
import { withServer } from './servers.js'
import { median } from './stats.js'

export type FootprintResult = {
  /** Medians over the repetitions, in ms. */
  readyMs: { empty: number, filled: number }
  /** Settled (settings.idleSeconds after ready): the target's figure. */
  idleRssBytes: number
  /** settings.earlyIdleSeconds after ready. */
  earlyIdleRssBytes: number
  peakRssBytes: number
  runs: { emptyReadyMs: number[], filledReadyMs: number[], idleRssBytes: number[], earlyIdleRssBytes: number[] }
}

export async function footprint (ctx: BenchContext): Promise<FootprintResult> {
  const runs: FootprintResult['runs'] = { emptyReadyMs: [], filledReadyMs: [], idleRssBytes: [], earlyIdleRssBytes: [] }
  const { earlyIdleSeconds, idleSeconds } = ctx.settings
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
      await sleep(earlyIdleSeconds * 1000)
      runs.earlyIdleRssBytes.push(server.rssBytes())
      await sleep((idleSeconds - earlyIdleSeconds) * 1000)
      runs.idleRssBytes.push(server.rssBytes())
      peakRssBytes = Math.max(peakRssBytes, server.peakRssBytes())
    })
    ctx.log(`footprint ${rep}/${ctx.settings.readyRepetitions}: ready in ${runs.emptyReadyMs.at(-1)!.toFixed(0)} ms (empty), ` +
      `${runs.filledReadyMs.at(-1)!.toFixed(0)} ms (${ctx.settings.rows.toLocaleString('en-US')} tasks); idle RSS ${(runs.earlyIdleRssBytes.at(-1)! / 1024 ** 2).toFixed(0)} MB after ${earlyIdleSeconds} s, ` +
      `${(runs.idleRssBytes.at(-1)! / 1024 ** 2).toFixed(0)} MB after ${idleSeconds} s`)
  }
  return {
    readyMs: { empty: median(runs.emptyReadyMs), filled: median(runs.filledReadyMs) },
    idleRssBytes: median(runs.idleRssBytes),
    earlyIdleRssBytes: median(runs.earlyIdleRssBytes),
    peakRssBytes,
    runs
  }
}
