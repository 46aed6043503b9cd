// The command line in-process: usage errors (exit 2) before anything is sent, --json error documents, help and version.
import t from 'tap'
import { Writable } from 'node:stream'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tempDir } from '../helper.js'
import { EXIT } from '../../src/cli/exit-codes.js'
import { run } from '../../src/cli/main.js'
import { SUBJECT_PNG } from './processes.js'

class Capture extends Writable {
  text = ''
  override _write (chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString()
    done()
  }
}

async function cli (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  const stdout = new Capture()
  const stderr = new Capture()
  const code = await run({ argv, env: { XDG_CONFIG_HOME: '/nonexistent-s2v-test', ...env }, stdout, stderr: stderr as unknown as NodeJS.WriteStream })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

t.test('usage errors exit 2 with a message, and send nothing', async t => {
  // An unreachable URL: if anything were sent, the exit code would be 4, not 2.
  const env = { S2V_URL: `http://127.0.0.1:${await freePort()}` }
  const dir = tempDir(t)
  const notImage = join(dir, 'notes.txt')
  writeFileSync(notImage, 'hello')
  const cases: Array<[string[], RegExp]> = [
    [['submit'], /required option '--image/],
    [['submit', '--image', join(dir, 'missing.png')], /no such file/],
    [['submit', '--image', notImage], /not a JPEG, PNG or WebP/],
    [['submit', '--image', SUBJECT_PNG, '--provider', 'acme'], /Allowed choices are minimax, modellix/],
    [['submit', '--image', SUBJECT_PNG, '--metadata', 'novalue'], /--metadata takes key=value/],
    [['list', '--limit', '0'], /expected a whole number above 0/],
    [['list', '--status', 'done'], /Allowed choices are queued, submitting, processing, success, failed/],
    [['wait', 'x', '--timeout', 'soon'], /not a duration/],
    [['wait'], /missing required argument 'id'/],
    [['deliveries', 'retry'], /give a delivery id, or --all-failed/],
    [['deliveries', 'retry', 'msg_1', '--all-failed'], /not both/],
    [['deliveries', 'retry', '--all-failed', '--since', 'yesterday'], /ISO date-time/],
    [['config', 'set', 'colour', 'blue'], /Allowed choices are url, token/],
    [['config', 'set', 'url', 'ftp://x'], /must be http\(s\)/],
    [['status', 'x', '--url', 'not a url'], /not a URL/],
    [['nosuchcommand'], /unknown command 'nosuchcommand'/]
  ]
  for (const [argv, message] of cases) {
    const res = await cli(argv, env)
    t.equal(res.code, EXIT.usage, argv.join(' '))
    t.match(res.stderr, message, argv.join(' '))
    t.equal(res.stdout, '', 'nothing on stdout without --json')
  }
})

t.test('--json: errors are one JSON document on stdout too', async t => {
  const env = { S2V_URL: `http://127.0.0.1:${await freePort()}` }
  const usage = await cli(['list', '--limit', 'x', '--json'], env)
  t.equal(usage.code, EXIT.usage)
  t.match(JSON.parse(usage.stdout), { error: { code: 'usage', message: /--limit/ }, exit_code: EXIT.usage })
  const unreachable = await cli(['status', 'x', '--json'], env)
  t.equal(unreachable.code, EXIT.unreachable)
  t.match(JSON.parse(unreachable.stdout), { error: { code: 'unreachable', reason: 'ECONNREFUSED' }, exit_code: EXIT.unreachable })
  t.match(unreachable.stderr, /cannot reach the service/)
})

t.test('help and version exit 0 and list the exit codes', async t => {
  const help = await cli(['--help'])
  t.equal(help.code, EXIT.ok)
  t.match(help.stdout, /Exit codes: 0 ok, 1 internal error, 2 usage, 3 task failed, 4 service unreachable, 5 auth refused/)
  for (const command of ['submit', 'status', 'list', 'wait', 'watch', 'history', 'download', 'refresh', 'cancel', 'quota', 'deliveries', 'config']) {
    t.match(help.stdout, new RegExp(`\\n  ${command}\\b`), command)
  }
  const submitHelp = await cli(['submit', '--help'])
  t.match(submitHelp.stdout, /--idempotency-key <key>[\s\S]*--notify-url <url>[\s\S]*--provider <name>[\s\S]*--wait[\s\S]*--out <file>[\s\S]*--timeout/)
  const version = await cli(['--version'])
  t.equal(version.code, EXIT.ok)
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
})
