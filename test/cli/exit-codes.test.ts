// End to end, every exit code and the stored config: `s2v` in child processes against the real service and the fake MiniMax in theirs.
import t from 'tap'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tempDir } from '../helper.js'
import { EXIT } from '../../src/cli/exit-codes.js'
import { runCli, startChildStack, SUBJECT_PNG, TOKEN } from './processes.js'

const stack = await startChildStack(t)
const home = tempDir(t)
const env = { S2V_URL: stack.url, S2V_TOKEN: TOKEN, HOME: home, XDG_CONFIG_HOME: join(home, '.config') }
// Pushes a little apart, so a wait sees processing before success.
const DEFAULT_BEHAVIOUR = { pushDelayMs: 300, finalStatus: 'success', pushes: 'normal' }

t.beforeEach(async () => { await stack.setBehaviour(DEFAULT_BEHAVIOUR) })

t.test('exit codes', async t => {
  t.test('2: usage errors (the full list is in main.test.ts, in-process)', async t => {
    const dir = tempDir(t)
    const notImage = join(dir, 'notes.txt')
    writeFileSync(notImage, 'hello')
    t.equal((await runCli(['submit'], { env })).code, EXIT.usage)
    const json = await runCli(['submit', '--image', notImage, '--json'], { env })
    t.equal(json.code, EXIT.usage)
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
