// The soak: one service under a mixed load for a minute, its resident memory sampled, to show it does not grow.
import { runLoad, type LoadResult } from './load.js'
import { seedPushTasks } from './fill.js'
import { challengeLoad, lookupLoad, pushLoad, reportFailures, service, submitLoad, type BenchContext } from './scenarios.js'
import { startFakeMiniMax, withServer } from './servers.js'

// A mix in the proportions we expect in production: mostly lookups and pushes, a few submits and challenges.
const SOAK_CONNECTIONS = { lookup: 4, push: 3, submit: 1, challenge: 1 }

export type SoakResult = {
  seconds: number
  warmupSeconds: number
  /** VmRSS every sample interval, in bytes. */
  samples: number[]
  rssAfterWarmupBytes: number
  rssEndBytes: number
  rssMaxBytes: number
  /** VmHWM at the end: the most the process ever held, between samples too. */
  peakRssBytes: number
  /** (end - after warm-up) / after warm-up. */
  growth: number
  loads: Record<string, LoadResult>
}

export async function soak (ctx: BenchContext): Promise<SoakResult> {
  const { soakSeconds, soakWarmupSeconds, soakSampleMs } = ctx.settings
  const targets = seedPushTasks(ctx.mainDb, ctx.settings.pushTasks, ctx.nextSeedBatch())
  return await withServer(() => startFakeMiniMax(ctx.dir), (fake) =>
    withServer(() => service(ctx, { minimax: { url: fake.url, apiKey: fake.apiKey } }), async (server) => {
      const samples: number[] = []
      const sampler = setInterval(() => samples.push(server.rssBytes()), soakSampleMs)
      const [lookup, push, submit, challenge] = await Promise.all([
        runLoad(lookupLoad(server.url, ctx.settings.rows, SOAK_CONNECTIONS.lookup), soakSeconds),
        runLoad(pushLoad(server.url, targets, SOAK_CONNECTIONS.push), soakSeconds),
        runLoad(submitLoad(server.url, SOAK_CONNECTIONS.submit), soakSeconds),
        runLoad(challengeLoad(ctx, server.url, SOAK_CONNECTIONS.challenge), soakSeconds)
      ])
      clearInterval(sampler)
      reportFailures(ctx, server, { lookup, push, submit, challenge })
      const afterWarmup = samples[Math.round(soakWarmupSeconds * 1000 / soakSampleMs) - 1] ?? samples[0]!
      const end = samples.at(-1)!
      return {
        seconds: soakSeconds,
        warmupSeconds: soakWarmupSeconds,
        samples,
        rssAfterWarmupBytes: afterWarmup,
        rssEndBytes: end,
        rssMaxBytes: Math.max(...samples),
        peakRssBytes: server.peakRssBytes(),
        growth: (end - afterWarmup) / afterWarmup,
        loads: { lookup, push, submit, challenge }
      }
    }))
}
