// End to end: `s2v` in child processes against the real service and the fake MiniMax, each in its own process.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helper.js'
import { EXIT } from '../../src/cli/exit-codes.js'
import { LAUNCHER, ROOT, runCli, startChildStack, SUBJECT_PNG, TOKEN } from './processes.js'

const stack = await startChildStack(t)
const home = tempDir(t)
const env = { S2V_URL: stack.url, S2V_TOKEN: TOKEN, HOME: home, XDG_CONFIG_HOME: join(home, '.config') }
// Pushes a little apart, so a wait sees processing before success.
const DEFAULT_BEHAVIOUR = { pushDelayMs: 300, finalStatus: 'success', pushes: 'normal' }
// Any control character but \t and \n: none may reach a pipe.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/

t.beforeEach(async () => { await stack.setBehaviour(DEFAULT_BEHAVIOUR) })

function isMp4 (bytes: Buffer): boolean {
  return bytes.subarray(4, 8).toString('latin1') === 'ftyp' && bytes.includes(Buffer.from('moov')) && bytes.includes(Buffer.from('avc1'))
}

t.test('submit a local image with --wait --out: the MP4 is on disk, progress is plain lines in a pipe', async t => {
  const dir = tempDir(t)
  const out = join(dir, 'video.mp4')
  const run = await runCli(['submit', '--image', SUBJECT_PNG, '--prompt', 'A person waves', '--metadata', 'ticket=T-1', 'team=cli', '--wait', '--out', out], { env })
  t.equal(run.code, EXIT.ok, run.stderr)
  t.ok(existsSync(out), 'the video is on disk')
  const bytes = readFileSync(out)
  t.ok(isMp4(bytes), 'a real MP4 (ftyp, moov, avc1)')
  t.notOk(existsSync(`${out}.part`), 'no partial file left')
  t.match(run.stdout, /success/)
  t.match(run.stdout, new RegExp(`saved\\s+${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(${bytes.length} bytes\\)`))
  // Not a terminal: one plain line per change on stderr, no control characters anywhere.
  t.notMatch(run.stderr + run.stdout, CONTROL)
  const lines = run.stderr.trim().split('\n')
  t.match(lines.find(l => l.includes(' processing')), /^\d{4}-\d\d-\d\dT.*Z [0-9a-f-]{36} processing · \d+s/)
  t.match(lines.find(l => l.includes(' success')), /success · \d+s · minimax: success/)
  t.ok(lines.some(l => /downloading .*video\.mp4/.test(l)), 'a download start line')
  t.ok(lines.some(l => /downloaded .*video\.mp4 .* in [\d.]+ s \(.*\/s\)/.test(l)), 'a download end line with the rate')
  t.equal(lines.filter(l => / processing · /.test(l)).length, 1, 'a status is printed once, not per tick')

  // The metadata and prompt went with the submit.
  const id = /([0-9a-f-]{36}) processing/.exec(run.stderr)?.[1] ?? ''
  const status = await runCli(['status', id, '--json'], { env })
  t.equal(status.code, EXIT.ok)
  t.match(JSON.parse(status.stdout), { id, status: 'success', prompt: 'A person waves', metadata: { ticket: 'T-1', team: 'cli' } })
})

t.test('--json: one JSON document on stdout, for each command', async t => {
  const dir = tempDir(t)
  const out = join(dir, 'v.mp4')
  const run = await runCli(['submit', '--image', SUBJECT_PNG, '--wait', '--out', out, '--json'], { env })
  t.equal(run.code, EXIT.ok, run.stderr)
  const doc = JSON.parse(run.stdout)
  t.match(doc, { status: 'success', provider: 'minimax', task_id: /^\d{18}$/, downloaded: { path: out, bytes: statSync(out).size } })
  t.equal(doc.downloaded.sha256, createHash('sha256').update(readFileSync(out)).digest('hex'))
  const id: string = doc.id

  const submitted = await runCli(['submit', '--image', SUBJECT_PNG, '--json', '--idempotency-key', `k-${id}`], { env })
  t.equal(submitted.code, EXIT.ok, submitted.stderr)
  const answer = JSON.parse(submitted.stdout)
  t.match(answer, { id: /^[0-9a-f-]{36}$/, base_resp: { status_code: 0 } })
  const again = await runCli(['submit', '--image', SUBJECT_PNG, '--json', '--idempotency-key', `k-${id}`], { env })
  t.equal(JSON.parse(again.stdout).id, answer.id, 'the same Idempotency-Key answers the same task')
  t.match(again.stderr, /replayed/)

  const waited = await runCli(['wait', answer.id, '--json'], { env })
  t.equal(waited.code, EXIT.ok, waited.stderr)
  t.match(JSON.parse(waited.stdout), { id: answer.id, status: 'success' })

  const listed = await runCli(['list', '--status', 'success', '--limit', '50', '--json'], { env })
  t.equal(listed.code, EXIT.ok)
  const page = JSON.parse(listed.stdout)
  t.ok(page.items.some((x: { id: string }) => x.id === answer.id), 'list shows the task')
  t.ok(page.items.every((x: { status: string }) => x.status === 'success'))

  const watched = await runCli(['watch', answer.id, '--json'], { env })
  t.equal(watched.code, EXIT.ok, watched.stderr)
  const streamed = JSON.parse(watched.stdout)
  t.equal(streamed.task.status, 'success')
  t.ok(streamed.events.length >= 1, 'the event stream gave at least the current status')

  const downloaded = await runCli(['download', answer.id, '-o', join(dir, 'again.mp4'), '--json'], { env })
  t.equal(downloaded.code, EXIT.ok, downloaded.stderr)
  t.match(JSON.parse(downloaded.stdout), { path: join(dir, 'again.mp4'), content_type: 'video/mp4' })
  t.ok(isMp4(readFileSync(join(dir, 'again.mp4'))))

  const refreshed = await runCli(['refresh', answer.id, '--json'], { env })
  t.equal(refreshed.code, EXIT.ok, refreshed.stderr)
  t.equal(JSON.parse(refreshed.stdout).status, 'success')

  const history = await runCli(['history', answer.id, '--json'], { env })
  t.equal(history.code, EXIT.ok, history.stderr)
  const events = JSON.parse(history.stdout)
  t.equal(events.next_cursor, null, 'every page was read')
  t.match(events.items[0], { source: 'submit', outcome: 'created' }, 'oldest first')
  t.ok(events.items.some((e: { status: string | null, outcome: string }) => e.status === 'success' && e.outcome === 'applied'))
  const capped = await runCli(['history', answer.id, '--limit', '1'], { env })
  t.equal(capped.code, EXIT.ok, capped.stderr)
  t.match(capped.stdout, /^\S+Z\s+submit\s+-\s+-\s+created\n$/, 'one human line per event, --limit caps them')

  const deliveries = await runCli(['deliveries', 'list', '--state', 'failed', '--json'], { env })
  t.equal(deliveries.code, EXIT.ok, deliveries.stderr)
  t.same(JSON.parse(deliveries.stdout).items, [])
  const retried = await runCli(['deliveries', 'retry', '--all-failed', '--json'], { env })
  t.equal(retried.code, EXIT.ok, retried.stderr)
  t.same(JSON.parse(retried.stdout), { retried: 0, skipped: 0 })

  for (const r of [run, submitted, waited, listed, watched, downloaded, refreshed, history, deliveries, retried]) {
    t.doesNotThrow(() => JSON.parse(r.stdout), 'stdout is exactly one JSON document')
  }
})

t.test('on a terminal: a live line and a progress bar (script gives a pseudo-terminal)', { skip: !hasScript() && 'util-linux script is not installed' }, async t => {
  await stack.setBehaviour({ pushDelayMs: 1500 })
  const dir = tempDir(t)
  const out = join(dir, 'tty.mp4')
  const command = `stty cols 120 rows 40; exec ${process.execPath} ${LAUNCHER} submit --image ${SUBJECT_PNG} --wait --out ${out}`
  const run = spawnSync('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH, TERM: 'xterm-256color', ...env }, encoding: 'utf8', timeout: 60_000, input: '' })
  t.equal(run.status, 0, run.stdout)
  t.ok(isMp4(readFileSync(out)))
  const text = run.stdout
  // eslint-disable-next-line no-control-regex -- escape sequences are what this test looks for
  t.match(text, /\x1b\[/, 'escape sequences: the line is redrawn in place')
  t.match(text, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/, 'ora\'s spinner')
  // eslint-disable-next-line no-control-regex
  t.match(text, /\x1b\[36mprocessing\x1b\[39m/, 'in colour')
  // Without escape sequences, what a person reads:
  // eslint-disable-next-line no-control-regex
  const shown = text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '')
  t.match(shown, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] [0-9a-f-]{36} · processing · [1-9]s/, 'the live line shows the status and the elapsed time, ticking')
  t.match(shown, /✔ [0-9a-f-]{36} · success · \d+s · minimax: success/, 'the final line stays')
  t.match(shown, /tty\.mp4 \[[█░]+\] 100% · [\d.]+ KiB \/ [\d.]+ KiB · [\d.]+ (B|KiB|MiB)\/s/, 'the download bar with size and rate')
  t.notMatch(text, /^\d{4}-\d\d-\d\dT\S+Z .* processing/m, 'no plain log lines on a terminal')
})

function hasScript (): boolean {
  return spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0
}
