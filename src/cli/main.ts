// The s2v command line: commander defines the commands and flags; every failure ends in a documented exit code.
import { readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { ApiClient } from './client.js'
import * as cmd from './commands.js'
import { parseDurationMs } from './duration.js'
import { CliError, EXIT } from './exit-codes.js'
import { Interrupted } from './follow.js'
import { Output } from './output.js'
import { resolveSettings, type Env } from './settings.js'

export type Io = { argv: string[], env: Env, stdout?: NodeJS.WritableStream, stderr?: NodeJS.WriteStream }

const TASK_STATUSES = ['queued', 'submitting', 'processing', 'success', 'failed']
const DELIVERY_STATES = ['pending', 'delivered', 'failed']

function positiveInt (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number above 0')
  return n
}

function duration (value: string): number {
  try {
    return parseDurationMs(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

function version (): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

/** Runs one command line; answers the exit code (it never calls process.exit, so tests can run it in-process). */
export async function run (io: Io): Promise<number> {
  const wantsJson = io.argv.includes('--json')
  const out = new Output({ json: wantsJson, env: io.env, stdout: io.stdout, stderr: io.stderr })
  const interrupt = new AbortController()
  let interrupts = 0
  const onSigint = () => {
    // A second Ctrl-C leaves at once, whatever is still running.
    if (++interrupts > 1) process.exit(EXIT.interrupted)
    interrupt.abort(new Interrupted())
  }
  process.on('SIGINT', onSigint)

  let exitCode: number = EXIT.ok
  const program = new Command('s2v')
  const context = async (): Promise<cmd.Context> => {
    const globals = program.opts<{ url?: string, token?: string }>()
    const settings = await resolveSettings({ url: globals.url, token: globals.token }, io.env)
    return { client: new ApiClient(settings.url, settings.token), out, signal: interrupt.signal, settings, env: io.env }
  }
  const action = <A extends unknown[]>(fn: (ctx: cmd.Context, ...args: A) => Promise<void>) => async (...args: A) => {
    await fn(await context(), ...args)
  }

  program
    .description('Client of the s2v-callback service: submit MiniMax S2V-01 videos, follow them, download them.')
    .version(version())
    .addOption(new Option('--url <url>', 'the service (default: S2V_URL, s2v config, http://127.0.0.1:3000)'))
    .addOption(new Option('--token <token>', 'bearer token (default: S2V_TOKEN, s2v config)'))
    .option('--json', 'print one JSON document on stdout and nothing else there')
    .showHelpAfterError('(s2v --help lists the commands)')
    .exitOverride()
    .configureOutput({
      writeOut: s => (io.stdout ?? process.stdout).write(s),
      writeErr: s => { if (!wantsJson || !s.startsWith('error:')) (io.stderr ?? process.stderr).write(s) },
      outputError: (s, write) => write(s)
    })
    .addHelpText('after', `
Exit codes: 0 ok, 1 internal error, 2 usage, 3 task failed, 4 service unreachable, 5 auth refused,
            6 --timeout elapsed, 7 the service answered an error, 130 Ctrl-C (the task goes on).`)

  program.command('submit')
    .description('submit a subject image (a local file becomes a data URL) and optionally wait for the video')
    .requiredOption('--image <file|url>', 'JPEG, PNG or WebP file under 20 MB, or an http(s) URL')
    .option('--prompt <text>', 'what happens in the video (at most 2000 characters)')
    .option('--metadata <key=value...>', 'your metadata, stored with the task (repeatable)')
    .option('--idempotency-key <key>', 'the same key and body never create a second (paid) video')
    .option('--notify-url <url>', 'POST every status change of this task there (signed)')
    .addOption(new Option('--provider <name>', 'who runs the model').choices(['minimax', 'modellix']))
    .option('--wait', 'follow the task until it finishes')
    .option('--out <file>', 'download the video there when it is ready (implies --wait)')
    .option('--timeout <duration>', 'give up waiting after this long (90, 90s, 5m, 2h)', duration)
    .action(action((ctx, opts: cmd.SubmitOptions & { timeout?: number }) => cmd.submit(ctx, { ...opts, timeoutMs: opts.timeout })))

  program.command('status').argument('<id>', 'our id or MiniMax\'s task_id').description('show a task')
    .action(action((ctx, id: string) => cmd.status(ctx, id)))

  program.command('list').description('list tasks, newest first')
    .addOption(new Option('--status <status>', 'only tasks in this status').choices(TASK_STATUSES))
    .option('--limit <n>', 'at most this many (1-100)', positiveInt)
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .action(action((ctx, opts: { status?: string, limit?: number, cursor?: string }) => cmd.list(ctx, opts)))

  program.command('wait').argument('<id>').description('wait until the task finishes (long-poll); exit 3 if it failed')
    .option('--timeout <duration>', 'give up after this long', duration)
    .action(action((ctx, id: string, opts: { timeout?: number }) => cmd.wait(ctx, id, opts.timeout)))

  program.command('watch').argument('<id>').description('follow the task\'s server-sent events until it finishes')
    .option('--timeout <duration>', 'give up after this long', duration)
    .action(action((ctx, id: string, opts: { timeout?: number }) => cmd.watch(ctx, id, opts.timeout)))

  program.command('history').argument('<id>').description('every event of the task, oldest first')
    .option('--limit <n>', 'at most this many events', positiveInt)
    .action(action((ctx, id: string, opts: { limit?: number }) => cmd.history(ctx, id, opts)))

  program.command('download').argument('<id>').description('download the finished video')
    .option('-o, --out <file>', 'where to write it (default: <id>.mp4)')
    .action(action((ctx, id: string, opts: { out?: string }) => cmd.download(ctx, id, opts.out)))

  program.command('refresh').argument('<id>').description('ask the provider about the task now')
    .action(action((ctx, id: string) => cmd.refresh(ctx, id)))

  program.command('cancel').argument('<id>').description('cancel a queued task (one already sent cannot be cancelled)')
    .action(action((ctx, id: string) => cmd.cancel(ctx, id)))

  program.command('quota').description('your submit quota and queue')
    .action(action(ctx => cmd.quota(ctx)))

  const deliveries = program.command('deliveries').description('notification deliveries')
  deliveries.command('list').description('deliveries, newest first')
    .addOption(new Option('--state <state>', 'only this state (failed: the dead letters)').choices(DELIVERY_STATES))
    .option('--task <id>', 'only this task\'s deliveries')
    .option('--limit <n>', 'at most this many (1-100)', positiveInt)
    .option('--cursor <cursor>', 'the next page')
    .action(action((ctx, opts: { state?: string, task?: string, limit?: number, cursor?: string }) => cmd.deliveriesList(ctx, opts)))
  deliveries.command('retry').argument('[id]', 'a delivery id').description('send a delivery again, or every failed one')
    .option('--all-failed', 'every failed delivery')
    .option('--since <date-time>', 'with --all-failed: only those created since then')
    .action(action((ctx, id: string | undefined, opts: { allFailed?: boolean, since?: string }) => cmd.deliveriesRetry(ctx, id, opts)))

  const config = program.command('config').description('the stored service URL and token (owner-only file in your config folder)')
  config.command('set')
    .addArgument(new Command().createArgument('<key>', 'url or token').choices(['url', 'token']))
    .argument('[value]', 'the value (a token is better typed at the prompt or piped: it stays out of shell history)')
    .action(action((ctx, key: string, value: string | undefined) => cmd.configSet(ctx, key, value)))
  config.command('unset')
    .addArgument(new Command().createArgument('<key>', 'url or token').choices(['url', 'token']))
    .action(action((ctx, key: string) => cmd.configUnset(ctx, key)))
  config.command('show').description('where the URL and token come from (the token itself is never printed)')
    .action(action(ctx => cmd.configShow(ctx)))

  for (const sub of [program, deliveries, config, ...program.commands, ...deliveries.commands, ...config.commands]) {
    sub.exitOverride()
    sub.configureOutput(program.configureOutput())
  }

  try {
    await program.parseAsync(io.argv, { from: 'user' })
  } catch (err) {
    exitCode = report(out, err, wantsJson)
  } finally {
    process.off('SIGINT', onSigint)
  }
  return exitCode
}

function report (out: Output, err: unknown, json: boolean): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok
    if (json) out.result({ error: { code: 'usage', message: err.message.replace(/^error: /, '') }, exit_code: EXIT.usage }, () => [])
    return EXIT.usage
  }
  if (err instanceof Interrupted) {
    out.error('interrupted')
    if (json) out.result({ error: { code: 'interrupted', message: 'interrupted' }, exit_code: EXIT.interrupted }, () => [])
    return EXIT.interrupted
  }
  if (!(err instanceof CliError)) {
    out.error(`unexpected: ${(err as Error)?.stack ?? String(err)}`)
    if (json) out.result({ error: { code: 'internal', message: (err as Error)?.message ?? String(err) }, exit_code: EXIT.internal }, () => [])
    return EXIT.internal
  }
  const d = err.details
  const extra: string[] = []
  if (typeof d.minimax_code === 'number') extra.push(`MiniMax code ${d.minimax_code}${typeof d.minimax_message === 'string' ? `: ${d.minimax_message}` : ''}`)
  if (typeof d.request_id === 'string') extra.push(`request id ${d.request_id}`)
  if (err.exitCode === EXIT.interrupted) out.info(err.message)
  else out.error(err.message, extra)
  if (json) {
    const { task, ...rest } = d
    out.result({ error: { ...rest, message: err.message }, exit_code: err.exitCode, ...(task === undefined ? {} : { task }) }, () => [])
  }
  return err.exitCode
}
