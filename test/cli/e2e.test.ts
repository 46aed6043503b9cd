// End to end: `s2v` in child processes against the real service and the fake MiniMax, each in its own process.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tempDir } from '../helper.js'
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

  const deliveries = await runCli(['deliveries', 'list', '--state', 'failed', '--json'], { env })
  t.equal(deliveries.code, EXIT.ok, deliveries.stderr)
  t.same(JSON.parse(deliveries.stdout).items, [])
  const retried = await runCli(['deliveries', 'retry', '--all-failed', '--json'], { env })
  t.equal(retried.code, EXIT.ok, retried.stderr)
  t.same(JSON.parse(retried.stdout), { retried: 0, skipped: 0 })

  for (const r of [run, submitted, waited, listed, watched, downloaded, refreshed, deliveries, retried]) {
    t.doesNotThrow(() => JSON.parse(r.stdout), 'stdout is exactly one JSON document')
  }
})

t.test('exit codes', async t => {
  t.test('2: usage errors, before anything is sent', async t => {
    const dir = tempDir(t)
    const notImage = join(dir, 'notes.txt')
    writeFileSync(notImage, 'hello')
    const cases: string[][] = [
      ['submit'],
      ['submit', '--image', join(dir, 'missing.png')],
      ['submit', '--image', notImage],
      ['submit', '--image', SUBJECT_PNG, '--provider', 'acme'],
      ['submit', '--image', SUBJECT_PNG, '--metadata', 'novalue'],
      ['list', '--limit', '0'],
      ['wait', 'x', '--timeout', 'soon'],
      ['deliveries', 'retry'],
      ['nosuchcommand']
    ]
    for (const args of cases) {
      const run = await runCli(args, { env })
      t.equal(run.code, EXIT.usage, `${args.join(' ')}: ${run.stderr}`)
    }
    const json = await runCli(['submit', '--image', notImage, '--json'], { env })
    t.match(JSON.parse(json.stdout), { error: { code: 'usage', message: /not a JPEG, PNG or WebP/ }, exit_code: EXIT.usage })
  })

  t.test('3: the task failed, with MiniMax\'s code', async t => {
    await stack.setBehaviour({ finalStatus: 'failed', failureCode: 1027 })
    const run = await runCli(['submit', '--image', SUBJECT_PNG, '--wait'], { env })
    t.equal(run.code, EXIT.taskFailed, run.stderr)
    t.match(run.stderr, /failed: MiniMax code 1027/)
    const json = await runCli(['submit', '--image', SUBJECT_PNG, '--wait', '--json'], { env })
    t.equal(json.code, EXIT.taskFailed)
    t.match(JSON.parse(json.stdout), { error: { code: 'task_failed', minimax_code: 1027 }, exit_code: EXIT.taskFailed, task: { status: 'failed', error: { code: '1027' } } })
  })

  t.test('4: the service is unreachable', async t => {
    const closed = `http://127.0.0.1:${await freePort()}`
    const run = await runCli(['status', 'x'], { env: { ...env, S2V_URL: closed } })
    t.equal(run.code, EXIT.unreachable)
    t.match(run.stderr, /cannot reach the service at .* \(ECONNREFUSED\)/)
  })

  t.test('5: the service refuses the token (a flag wins over S2V_TOKEN)', async t => {
    const run = await runCli(['list', '--token', 'wrong', '--json'], { env })
    t.equal(run.code, EXIT.auth)
    t.match(JSON.parse(run.stdout), { error: { code: 'unauthorized', http_status: 401 }, exit_code: EXIT.auth })
    t.notMatch(run.stderr + run.stdout, /wrong/, 'the token is never printed')
    const none = await runCli(['list'], { env: { ...env, S2V_TOKEN: undefined } })
    t.equal(none.code, EXIT.auth)
  })

  t.test('6: --timeout elapsed; the message says how to resume', async t => {
    await stack.setBehaviour({ pushes: 'none' })
    const run = await runCli(['submit', '--image', SUBJECT_PNG, '--wait', '--timeout', '1s', '--json'], { env })
    t.equal(run.code, EXIT.timeout, run.stderr)
    const doc = JSON.parse(run.stdout)
    t.match(doc, { error: { code: 'timeout', resume: /^s2v wait [0-9a-f-]{36}$/ }, exit_code: EXIT.timeout })
    t.match(run.stderr, /Resume with: s2v wait /)
  })

  t.test('7: the service answered an error (unknown task), its code printed', async t => {
    const run = await runCli(['status', 'no-such-task'], { env })
    t.equal(run.code, EXIT.apiError)
    t.match(run.stderr, /not_found: /)
    const json = await runCli(['download', 'no-such-task', '--json'], { env })
    t.match(JSON.parse(json.stdout), { error: { code: 'not_found', http_status: 404 }, exit_code: EXIT.apiError })
  })

  t.test('130: Ctrl-C while waiting stops waiting, says how to resume, and does not cancel the task', async t => {
    await stack.setBehaviour({ pushes: 'none' })
    const submitted = await runCli(['submit', '--image', SUBJECT_PNG], { env })
    const id = submitted.stdout.trim()
    let sent = false
    const run = await runCli(['wait', id], {
      env,
      onStderr: (text, child) => {
        if (sent || !/ processing · /.test(text)) return
        sent = true
        child.kill('SIGINT')
      }
    })
    t.equal(run.code, EXIT.interrupted, run.stderr)
    t.match(run.stderr, new RegExp(`not cancelled\\)\\. Resume with: s2v wait ${id}`))
    const after = await runCli(['status', id, '--json'], { env })
    t.equal(JSON.parse(after.stdout).status, 'processing', 'the task goes on')
  })
})

t.test('config set url|token: stored owner-only, never printed; flags beat S2V_* which beat the file', async t => {
  const dir = tempDir(t)
  const cfg = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg') }
  t.equal((await runCli(['config', 'set', 'url', stack.url], { env: cfg })).code, EXIT.ok)
  const set = await runCli(['config', 'set', 'token'], { env: cfg, input: `${TOKEN}\n` })
  t.equal(set.code, EXIT.ok, set.stderr)
  t.notMatch(set.stdout + set.stderr, TOKEN)
  const file = join(dir, 'cfg', 's2v', 'config.json')
  t.equal(statSync(file).mode & 0o777, 0o600, 'owner-only file')
  t.equal(statSync(join(dir, 'cfg', 's2v')).mode & 0o777, 0o700, 'owner-only folder')
  t.same(JSON.parse(readFileSync(file, 'utf8')), { url: stack.url, token: TOKEN })

  const shown = await runCli(['config', 'show', '--json'], { env: cfg })
  t.notMatch(shown.stdout + shown.stderr, TOKEN)
  t.match(JSON.parse(shown.stdout), { url: stack.url, url_source: 'config', token: 'set', token_source: 'config', mode: '0600' })

  // The stored URL and token are enough to talk to the service.
  t.equal((await runCli(['list', '--json'], { env: cfg })).code, EXIT.ok)
  // S2V_TOKEN wins over the file, --token over both.
  t.equal((await runCli(['list'], { env: { ...cfg, S2V_TOKEN: 'wrong' } })).code, EXIT.auth)
  t.equal((await runCli(['list', '--token', TOKEN], { env: { ...cfg, S2V_TOKEN: 'wrong' } })).code, EXIT.ok)
  const envShown = JSON.parse((await runCli(['config', 'show', '--json', '--url', 'http://127.0.0.1:1'], { env: { ...cfg, S2V_TOKEN: 'x' } })).stdout)
  t.match(envShown, { url: 'http://127.0.0.1:1', url_source: 'flag', token_source: 'env' })

  t.equal((await runCli(['config', 'set', 'url', 'ftp://x'], { env: cfg })).code, EXIT.usage)
  t.equal((await runCli(['config', 'unset', 'token'], { env: cfg })).code, EXIT.ok)
  t.same(JSON.parse(readFileSync(file, 'utf8')), { url: stack.url })
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
