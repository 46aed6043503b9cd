// The lookup baseline's data: the service's own answers to GET /v1/tasks/<id> for random filled tasks, in a JSON file.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { filledTaskId } from './fill.js'
import { service, type BenchContext } from './scenarios.js'
import { BENCH_API_TOKEN, withServer } from './servers.js'

/** The answers as the service sent them (text: the exact bytes), and the file the baseline loads them from. */
export type LookupSample = { path: string, answers: Array<{ id: string, text: string }>, bytes: number }

// Lookups in flight while sampling: a few, so a 2,000-answer sample takes about a second.
const SAMPLE_CONCURRENCY = 8

export async function sampleLookups (ctx: BenchContext): Promise<LookupSample> {
  const { rows, lookupSample } = ctx.settings
  const seqs = new Set<number>()
  while (seqs.size < Math.min(lookupSample, rows)) seqs.add(1 + Math.floor(Math.random() * rows))
  const ids = [...seqs].map(filledTaskId)
  const answers = await withServer(() => service(ctx), async (server) => {
    const fetched: LookupSample['answers'] = []
    for (let i = 0; i < ids.length; i += SAMPLE_CONCURRENCY) {
      fetched.push(...await Promise.all(ids.slice(i, i + SAMPLE_CONCURRENCY).map(async (id) => {
        const res = await fetch(`${server.url}/v1/tasks/${id}`, { headers: { authorization: `Bearer ${BENCH_API_TOKEN}` } })
        const text = await res.text()
        if (res.status !== 200) throw new Error(`sampling lookups: GET /v1/tasks/${id} answered ${res.status}: ${text}`)
        return { id, text }
      })))
    }
    return fetched
  })
  const path = join(ctx.dir, 'lookup-sample.json')
  writeFileSync(path, JSON.stringify(answers))
  return { path, answers, bytes: answers.reduce((sum, answer) => sum + Buffer.byteLength(answer.text), 0) }
}
