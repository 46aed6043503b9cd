// The image check's part for the production layout (docker-compose.yml, profile "replicas"): the compose services and
// deploy/nginx.conf agree with each other and with the image, `nginx -t` passes, and the layout runs without Docker:
// a throwaway PostgreSQL cluster, two replicas started from the runtime stage's files, nginx in front, all on loopback,
// with a submit and its pushes from the fake MiniMax going through nginx.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigSchema, loadConfig } from '../src/config.js'
import { MAX_WAIT_SECONDS } from '../src/schemas/tasks.js'
import { startFakeMiniMax } from '../test/fixtures/fake-minimax.js'
import { postgresBinDir, startScratchPostgres } from '../test/postgres-cluster.js'
import { composeEnvironment, containerPort, volumeMount, type ComposeFile, type ComposeService } from './compose.js'
import { describe, duration, exitWithin, freePort, hostPath, runToEnd, start, step, tempFolder, type StepContext } from './check-steps.js'

export const PROFILE = 'replicas'
const DEFAULT_SERVICE = 's2v-callback' // the SQLite service: `docker compose up` without a profile runs it alone
const POSTGRES_SERVICE = 'postgres'
const REPLICAS = ['s2v-replica-1', 's2v-replica-2']
const NGINX_SERVICE = 'nginx'
const NGINX_CONF = 'deploy/nginx.conf'
const NGINX_CONF_TARGET = '/etc/nginx/nginx.conf' // where the official image reads it
const POSTGRES_DATA = '/var/lib/postgresql/data' // the official image's PGDATA
const CONFIG_KEYS = new Set(Object.keys(ConfigSchema.properties))
const DEFAULTS = loadConfig({})
const SSE_KEEPALIVE_DEFAULT_MS = DEFAULTS.SSE_KEEPALIVE_MS
const SUBMIT_BODY_DEFAULT = DEFAULTS.SUBMIT_BODY_LIMIT

const NGINX_TIMEOUT_MS = 10_000 // nginx -t, or nginx's start: well under a second normally
const READY_TIMEOUT_MS = 30_000 // a replica's start plus migrations, as the single container's check allows
const FLOW_TIMEOUT_MS = 20_000 // a submit, its challenge and two pushes from the fake (a second or so normally)
const POLL_MS = 100
const REQUEST_TIMEOUT_MS = 5_000 // one loopback request through nginx; longer is a hang
const STOP_GRACE_MS = 15_000 // the replicas' stop_grace_period

export type ReplicaFiles = {
  compose: ComposeFile
  /** The runtime stage's WORKDIR on disk, its ENV, and its CMD. */
  appDir: string
  imageEnv: Record<string, string>
  cmd: string[]
}

// ---------------------------------------------------------------- what the files say

type NginxConf = { text: string, listen: string | undefined, upstreams: string[], directives: Map<string, string[]> }

function readNginxConf (root: string): NginxConf {
  const text = readFileSync(join(root, NGINX_CONF), 'utf8').replace(/#.*$/gm, '')
  const directives = new Map<string, string[]>()
  for (const match of text.matchAll(/^\s*([a-z_]+)\s+([^;{]*);/gm)) {
    directives.set(match[1]!, [...directives.get(match[1]!) ?? [], match[2]!.trim()])
  }
  const upstreamBlock = /upstream\s+\S+\s*\{([^}]*)\}/.exec(text)?.[1] ?? ''
  const upstreams = [...upstreamBlock.matchAll(/^\s*server\s+(\S+)/gm)].map((match) => match[1]!)
  return { text, listen: directives.get('listen')?.[0]?.split(/\s+/)[0], upstreams, directives }
}

// nginx's time syntax as far as the config uses it: 90s, 2m, 1500ms, or bare seconds.
function nginxSeconds (value: string | undefined): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(value ?? '')
  if (!match) return Number.NaN
  const n = Number(match[1])
  return match[2] === 'ms' ? n / 1000 : match[2] === 'm' ? n * 60 : n
}

function nginxBytes (value: string | undefined): number {
  const match = /^(\d+)([kKmMgG])?$/.exec(value ?? '')
  if (!match) return Number.NaN
  const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1
  return Number(match[1]) * unit
}

const inProfile = (service: ComposeService | undefined): boolean => service?.profiles?.includes(PROFILE) ?? false
// The long form only: the short one (a list of names) waits for the start, not for the healthcheck.
const dependsOnHealthy = (service: ComposeService | undefined, name: string): boolean => {
  const dependsOn = service?.depends_on
  return !Array.isArray(dependsOn) && dependsOn?.[name]?.condition === 'service_healthy'
}
const imageOf = (service: ComposeService | undefined): string => service?.image ?? ''

/** The compose services of the profile and the nginx config, checked against each other and the image. */
export function checkReplicaFiles (root: string, files: Pick<ReplicaFiles, 'compose' | 'imageEnv'>, ctx: StepContext): void {
  const services = files.compose.services ?? {}
  ctx.check(services[DEFAULT_SERVICE] !== undefined && services[DEFAULT_SERVICE].profiles === undefined,
    `${DEFAULT_SERVICE} must stay outside every profile: \`docker compose up\` runs it alone, on SQLite`)
  for (const name of [POSTGRES_SERVICE, ...REPLICAS, NGINX_SERVICE]) {
    ctx.check(inProfile(services[name]), `${name} is missing or not in profile "${PROFILE}"`)
  }

  const postgres = services[POSTGRES_SERVICE]
  const pgEnv = postgres ? composeEnvironment(postgres) : {}
  ctx.check(/^postgres:\d/.test(imageOf(postgres)), `${POSTGRES_SERVICE} does not run the official postgres image with a version (${imageOf(postgres) || 'none'})`)
  ctx.check((postgres?.volumes ?? []).some((volume) => volumeMount(volume).target === POSTGRES_DATA), `${POSTGRES_SERVICE} keeps no volume at ${POSTGRES_DATA}`)
  ctx.check(Boolean(postgres?.healthcheck?.test), `${POSTGRES_SERVICE} has no healthcheck (the replicas wait for it)`)

  const port = files.imageEnv.PORT ?? ''
  for (const name of REPLICAS) {
    const replica = services[name]
    if (!replica) continue
    const env = composeEnvironment(replica)
    const url = /^postgres(?:ql)?:\/\/([^:@/]+)(?::[^@]*)?@([^:/]+)(?::(\d+))?\/([^?]+)/.exec(env.DATABASE_URL ?? '')
    ctx.check(url !== null, `${name}: DATABASE_URL is not a postgres:// URL (${env.DATABASE_URL === undefined ? 'unset' : 'malformed'})`)
    if (url) {
      ctx.check(url[2] === POSTGRES_SERVICE && (url[3] ?? '5432') === '5432', `${name}: DATABASE_URL does not point at ${POSTGRES_SERVICE}:5432`)
      ctx.check(url[1] === pgEnv.POSTGRES_USER && url[4] === pgEnv.POSTGRES_DB, `${name}: DATABASE_URL's user/database (${url[1]}/${url[4]}) are not POSTGRES_USER/POSTGRES_DB (${pgEnv.POSTGRES_USER}/${pgEnv.POSTGRES_DB})`)
    }
    ctx.check([undefined, port].includes(env.PORT), `${name}: PORT ${env.PORT} is not the image PORT ${port}`)
    ctx.check(!['', 'false', undefined].includes(env.TRUST_PROXY), `${name}: TRUST_PROXY is not set: behind nginx every caller would share nginx's address in the rate limits`)
    const unknown = Object.keys(env).filter((key) => !CONFIG_KEYS.has(key))
    ctx.check(unknown.length === 0, `${name}: environment names keys that are not in ConfigSchema: ${unknown.join(', ')}`)
    ctx.check(Boolean(replica.healthcheck?.test), `${name} has no healthcheck (nginx waits for it)`)
    ctx.check(dependsOnHealthy(replica, POSTGRES_SERVICE), `${name} does not wait for ${POSTGRES_SERVICE} to be healthy`)
    ctx.check((replica.ports ?? []).length === 0, `${name} publishes a port: only nginx should be reachable from outside`)
  }

  const nginx = services[NGINX_SERVICE]
  ctx.check(/^nginx:\d/.test(imageOf(nginx)), `${NGINX_SERVICE} does not run the official nginx image with a version (${imageOf(nginx) || 'none'})`)
  const mounts = (nginx?.volumes ?? []).map(volumeMount)
  ctx.check(mounts.some((mount) => mount.source.replace(/^\.\//, '') === NGINX_CONF && mount.target.startsWith(NGINX_CONF_TARGET)), `${NGINX_SERVICE} does not mount ./${NGINX_CONF} at ${NGINX_CONF_TARGET}`)
  for (const name of REPLICAS) ctx.check(dependsOnHealthy(nginx, name), `${NGINX_SERVICE} does not wait for ${name} to be healthy`)

  if (!existsSync(join(root, NGINX_CONF))) return ctx.check(false, `${NGINX_CONF} is missing`)
  const conf = readNginxConf(root)
  const ports = (nginx?.ports ?? []).map(containerPort)
  ctx.check(ports.length > 0 && ports.every((p) => p === conf.listen), `${NGINX_SERVICE}'s container ports [${ports.join(', ')}] are not the port nginx.conf listens on (${conf.listen})`)
  const expected = REPLICAS.map((name) => `${name}:${port}`).sort()
  ctx.check(JSON.stringify([...conf.upstreams].sort()) === JSON.stringify(expected), `nginx.conf's upstream servers [${conf.upstreams.join(', ')}] are not the replicas [${expected.join(', ')}]`)
  const read = nginxSeconds(conf.directives.get('proxy_read_timeout')?.[0])
  ctx.check(read > MAX_WAIT_SECONDS && read > SSE_KEEPALIVE_DEFAULT_MS / 1000, `proxy_read_timeout (${read} s) must exceed the longest long-poll (${MAX_WAIT_SECONDS} s) and the event stream's keep-alive (${SSE_KEEPALIVE_DEFAULT_MS / 1000} s)`)
  ctx.check(conf.directives.get('proxy_buffering')?.[0] === 'off', 'proxy_buffering is not off: event streams would be held back')
  ctx.check((conf.directives.get('proxy_set_header') ?? []).some((value) => /^X-Forwarded-For\s+\$proxy_add_x_forwarded_for$/i.test(value)), 'nginx.conf does not pass X-Forwarded-For (the replicas trust one hop for the client address)')
  ctx.check(nginxBytes(conf.directives.get('client_max_body_size')?.[0]) >= SUBMIT_BODY_DEFAULT, `client_max_body_size is below SUBMIT_BODY_LIMIT's default (${SUBMIT_BODY_DEFAULT} bytes): large submits would get nginx's 413`)
}

// ---------------------------------------------------------------- nginx on this machine

/**
 * nginx.conf with the compose names and ports replaced by loopback ones, and its logs written into `prefix` (a child's
 * stdout here is a socket, which nginx cannot open as /dev/stdout); every other directive as written.
 */
function localNginxConf (root: string, prefix: string, listen: number, replicaPorts: number[]): string {
  let text = readFileSync(join(root, NGINX_CONF), 'utf8')
  const conf = readNginxConf(root)
  text = text.replace(/^(\s*listen\s+)\S+;/m, `$1127.0.0.1:${listen};`)
  text = text.replaceAll('/dev/stdout', join(prefix, 'access.log')).replaceAll('/dev/stderr', join(prefix, 'error.log'))
  conf.upstreams.forEach((server, index) => { text = text.replace(`server ${server}`, `server 127.0.0.1:${replicaPorts[index]}`) })
  return text
}

function nginxBinary (): string | undefined {
  return ['/usr/sbin/nginx', ...hostPath().split(':').map((dir) => join(dir, 'nginx'))].find((path) => existsSync(path))
}

// Its pid file in the temp folder (the config leaves pid to the image's default), in the foreground under our control.
const nginxArgs = (prefix: string, confPath: string): string[] => ['-p', prefix, '-c', confPath, '-e', join(prefix, 'error.log'), '-g', `pid ${join(prefix, 'nginx.pid')}; daemon off;`]

/** A missing nginx or PostgreSQL skips what needs it, unless REQUIRE_NGINX=1 / REQUIRE_POSTGRES=1 (as .ci/run sets). */
function missing (what: string, variable: string, install: string, ctx: StepContext): void {
  if (process.env[variable] === '1') ctx.check(false, `${what} is not installed (${install}), and ${variable}=1 requires it`)
  else ctx.note(`skipped: ${what} is not installed (${install}; ${variable}=1 makes this a failure)`)
}

export async function checkNginxSyntax (root: string, ctx: StepContext): Promise<void> {
  const nginx = nginxBinary()
  if (!nginx) return missing('nginx', 'REQUIRE_NGINX', 'apt-get install nginx', ctx)
  const prefix = tempFolder('nginx-t')
  const confPath = join(prefix, 'nginx.conf')
  writeFileSync(confPath, localNginxConf(root, prefix, await freePort(), [await freePort(), await freePort()]))
  ctx.note(`the upstream servers ${readNginxConf(root).upstreams.join(', ')} → 127.0.0.1 ports (compose's names do not resolve here); the logs → files in a temp folder`)
  const result = await runToEnd([nginx, '-t', ...nginxArgs(prefix, confPath)], prefix, { PATH: hostPath() }, NGINX_TIMEOUT_MS)
  ctx.check(result.code === 0, `nginx -t: ${describe(result, NGINX_TIMEOUT_MS)}\n${result.output}`)
}

// ---------------------------------------------------------------- running the layout

async function waitFor (what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition().catch(() => false)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${duration(timeoutMs)}`)
    await sleep(POLL_MS)
  }
}

const getJson = async (url: string): Promise<{ status: number, body: any }> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  return { status: res.status, body: await res.json() }
}

/** Lookups a replica answered, from its own /metrics: only nginx sends lookups, so each came through it. */
async function lookupsServed (url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text()
  return [...text.matchAll(/^s2v_http_request_duration_seconds_count\{([^}]*)\} (\d+)$/gm)]
    .filter((match) => match[1]!.includes('route="/v1/tasks/:id"') && match[1]!.includes('method="GET"'))
    .reduce((sum, match) => sum + Number(match[2]), 0)
}

/**
 * PostgreSQL, both replicas (the runtime stage's CMD in its WORKDIR, with the replica service's environment) and nginx,
 * on loopback; a submit through nginx, its challenge and pushes from the fake MiniMax through nginx too; then SIGTERM.
 */
export async function runReplicaLayout (root: string, files: ReplicaFiles): Promise<void> {
  const teardowns: Array<() => unknown> = []
  try {
    await runLayout(root, files, teardowns)
  } finally {
    for (const teardown of teardowns.reverse()) await teardown()
  }
}

async function runLayout (root: string, files: ReplicaFiles, teardowns: Array<() => unknown>): Promise<void> {
  const nginx = nginxBinary()
  const ready = await step(`profile ${PROFILE}: PostgreSQL, ${REPLICAS.join(' and ')} from the runtime stage, and nginx in front start on loopback`, async (ctx) => {
    if (postgresBinDir() === null) return missing('PostgreSQL\'s server', 'REQUIRE_POSTGRES', 'apt-get install postgresql', ctx)
    if (!nginx) return missing('nginx', 'REQUIRE_NGINX', 'apt-get install nginx', ctx)
    const cluster = await startScratchPostgres()
    teardowns.push(() => cluster.stop())
    const databaseUrl = await cluster.freshDatabase()
    ctx.note(`${POSTGRES_SERVICE} → a throwaway PostgreSQL cluster on 127.0.0.1 (this machine's server, not the image); DATABASE_URL → its database`)
    const fake = await startFakeMiniMax({ behaviour: { pushDelayMs: 50 } })
    teardowns.push(() => fake.close())
    ctx.note('MINIMAX_BASE_URL and MINIMAX_API_KEY → the fake MiniMax; PUBLIC_BASE_URL → nginx, so its challenges and pushes go through nginx')
    const nginxPort = await freePort()
    const publicUrl = `http://127.0.0.1:${nginxPort}`
    const replicaPorts = [await freePort(), await freePort()]
    const servers = REPLICAS.map((name, index) => {
      const env = {
        ...files.imageEnv,
        ...composeEnvironment(files.compose.services![name]!),
        PATH: hostPath(),
        PORT: String(replicaPorts[index]),
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl,
        PUBLIC_BASE_URL: publicUrl,
        MINIMAX_BASE_URL: fake.url,
        MINIMAX_API_KEY: fake.apiKey,
        LOG_LEVEL: 'warn'
      }
      return { name, url: `http://127.0.0.1:${replicaPorts[index]}`, ...start(files.cmd, files.appDir, env) }
    })
    ctx.note(`PORT → ${replicaPorts.join(' and ')} and HOST → 127.0.0.1 for the replicas; nginx listens on ${nginxPort}`)
    // Both start together: each applies the migrations it finds missing, under the advisory lock.
    for (const server of servers) {
      await waitFor(`${server.name} GET /readyz`, async () => {
        if (server.child.exitCode !== null) throw new Error(`${server.name} exited (${server.child.exitCode}): ${server.output()}`)
        return (await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).ok
      }, READY_TIMEOUT_MS).catch((err: Error) => { throw new Error(`${err.message}; its output:\n${server.output()}`) })
    }
    const prefix = tempFolder('nginx')
    const confPath = join(prefix, 'nginx.conf')
    writeFileSync(confPath, localNginxConf(root, prefix, nginxPort, replicaPorts))
    const proxy = start([nginx, ...nginxArgs(prefix, confPath)], prefix, { PATH: hostPath() })
    // SIGQUIT: nginx's graceful stop.
    teardowns.push(async () => { proxy.child.kill('SIGQUIT'); await exitWithin(proxy.child, NGINX_TIMEOUT_MS) })
    await waitFor('nginx GET /readyz', async () => (await fetch(`${publicUrl}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).ok, NGINX_TIMEOUT_MS)
      .catch((err: Error) => { throw new Error(`${err.message}; its output:\n${proxy.output()}`) })
    return { servers, publicUrl, fake }
  })
  if (!ready) return

  const { servers, publicUrl, fake } = ready
  await step(`profile ${PROFILE}: a submit through nginx; MiniMax's challenge and pushes reach the replicas through nginx; both replicas serve`, async (ctx) => {
    const submitted = await fetch(`${publicUrl}/v1/video_generation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'S2V-01', prompt: 'the production layout', subject_reference: [{ type: 'character', image: ['https://example.com/face.jpg'] }] }),
      signal: AbortSignal.timeout(FLOW_TIMEOUT_MS)
    })
    const answer = await submitted.json() as { id?: string }
    if (submitted.status !== 200 || !answer.id) throw new Error(`the submit answered ${submitted.status}: ${JSON.stringify(answer)}`)
    ctx.check(fake.challenges.some((challenge) => challenge.ok && challenge.url.startsWith(publicUrl)), 'the challenge did not come through nginx')
    await waitFor('the task is success, by the pushes through nginx', async () => (await getJson(`${publicUrl}/v1/tasks/${answer.id}`)).body.status === 'success', FLOW_TIMEOUT_MS)
    const pushed = fake.pushes.filter((push) => push.statusCode === 200).length
    ctx.check(pushed === 2, `the fake's pushes acknowledged through nginx: ${pushed} of 2`)
    // Lookups through nginx until both replicas have answered some (nginx alternates between them).
    for (let i = 0; i < 4; i++) await getJson(`${publicUrl}/v1/tasks/${answer.id}`)
    const served = await Promise.all(servers.map((server) => lookupsServed(server.url)))
    ctx.check(served.every((count) => count > 0), `lookups through nginx answered by ${servers.map((server, index) => `${server.name}: ${served[index]}`).join(', ')}`)
  })

  await step(`profile ${PROFILE}: SIGTERM stops both replicas with code 0 within ${duration(STOP_GRACE_MS)}`, async (ctx) => {
    for (const server of servers) server.child.kill('SIGTERM')
    for (const server of servers) {
      const exit = await exitWithin(server.child, STOP_GRACE_MS)
      ctx.check(exit?.code === 0, `${server.name}: ${exit ? exit.signal ?? `exit code ${exit.code}` : 'still running'}; the end of its output:\n${server.output()}`)
    }
  })
}
