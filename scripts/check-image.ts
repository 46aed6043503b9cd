// `npm run check:image`: the production image without a Docker engine. Builds the Dockerfile's stages in temp folders,
// checks what the runtime stage holds, starts its CMD with the compose environment, probes it, and stops it with SIGTERM;
// then the same for the production layout (profile replicas: scripts/check-replicas.ts).
import type { ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs'
import { userInfo } from 'node:os'
import { delimiter, dirname, join, posix } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { ConfigSchema } from '../src/config.js'
import { composeEnvironment, containerPort, readCompose, volumeMount, type ComposeFile, type ComposeService } from './compose.js'
import {
  durationMs, execOrShell, instructions, parseCopy, parseDockerfile, parseDockerignore, parseEnv, parseHealthcheck, plannedCopies,
  shellWords, stageEnv, stageExposed, stageVolumes, type Healthcheck, type IgnoreRule, type Stage
} from './dockerfile.js'
import {
  Abort, cleanUp, describe, duration, exitWithin, freePort, hostPath, results, runToEnd, start, step, tempFolder, type Finished, type StepContext
} from './check-steps.js'
import { checkNginxSyntax, checkReplicaFiles, PROFILE, runReplicaLayout } from './check-replicas.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SERVICE_NAME = 's2v-callback' // the compose service built from this folder
const CONFIG_KEYS = new Set(Object.keys(ConfigSchema.properties))
const ADDON = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node' // compiled by npm ci in the builder
const LOCAL_NODE_PREFIX = dirname(dirname(process.execPath)) // where this machine's Node keeps include/node, as /usr/local does in the image

const RUN_TIMEOUT_MS = 10 * 60_000 // one RUN step; npm ci compiles better-sqlite3 (1–2 min on 2 cores), so only a hang gets here
const READY_TIMEOUT_MS = 30_000 // start-up plus migrations on an empty database, with room for a slow CI machine
const READY_POLL_MS = 100 // short, so the wait ends soon after the server is ready
const REQUEST_TIMEOUT_MS = 2_000 // one loopback request; longer is a hang
const DOCKER_HEALTHCHECK_TIMEOUT = '30s' // Docker's default when HEALTHCHECK sets no --timeout
const COMPOSE_STOP_GRACE = '10s' // compose's default when the service sets no stop_grace_period
const STEP_NAME_CHARS = 100 // long RUN lines are cut in the step list; the Dockerfile has the rest

const NODE_PROGRAMS = new Set(['npm', 'npx', 'node']) // RUN steps the check runs for real
const OS_PACKAGE_PROGRAMS = new Set(['apt-get', 'apt', 'apk', 'dnf', 'yum', 'microdnf']) // this machine has its packages already
const FOLDER_PROGRAMS = new Set(['mkdir', 'chown', 'chmod']) // image folders and ownership; the check uses its temp folders instead
const IGNORED_KEYWORDS = new Set(['ARG', 'LABEL', 'EXPOSE', 'VOLUME', 'HEALTHCHECK', 'CMD', 'STOPSIGNAL', 'MAINTAINER']) // read later, or no effect on files
// What npm needs from this machine to reach the registry and its cache; nothing that changes what gets built
const BUILD_ENV_PASSTHROUGH = ['HOME', 'TMPDIR', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'NODE_EXTRA_CA_CERTS']
// better-sqlite3 would fetch a prebuilt addon from GitHub; from source it needs only the npm registry. Audit and fund add nothing here.
const BUILD_ENV_FIXED = { npm_config_build_from_source: 'true', npm_config_audit: 'false', npm_config_fund: 'false' }

// An image path inside the folder that stands for a stage's `/`.
function onDisk (root: string, imagePath: string): string {
  return join(root, imagePath)
}

// ---------------------------------------------------------------- the image's recipe

interface Image {
  builder: Stage
  runtime: Stage
  ignoreRules: IgnoreRule[]
  env: Map<string, string>
  healthcheck: Healthcheck | undefined
  service: ComposeService | undefined
  serviceEnv: Record<string, string>
  composeErrors: string[]
  compose: ComposeFile
}

function readImage (): Image {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  const runtime = stages.at(-1)
  if (!runtime) throw new Error('the Dockerfile has no FROM')
  const builderName = instructions(runtime, 'COPY').map(parseCopy).find((copy) => copy.from)?.from
  const builder = stages.find((stage) => stage.name === builderName && stage !== runtime)
  if (!builder) throw new Error(`the runtime stage copies from no earlier stage (--from=${builderName ?? 'none'})`)
  const ignorePath = join(ROOT, '.dockerignore')
  const { errors, compose } = readCompose(join(ROOT, 'docker-compose.yml'))
  const service = compose.services?.[SERVICE_NAME]
  return {
    builder,
    runtime,
    ignoreRules: parseDockerignore(existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : ''),
    env: stageEnv(runtime),
    healthcheck: parseHealthcheck(instructions(runtime, 'HEALTHCHECK').at(-1) ?? ''),
    service,
    serviceEnv: service ? composeEnvironment(service) : {},
    composeErrors: errors,
    compose
  }
}

// The container's settings: the image's ENV, then the compose service's environment on top.
function composedEnv (image: Image): Record<string, string> {
  return { ...Object.fromEntries(image.env), ...image.serviceEnv }
}

function checkCompose (image: Image, ctx: StepContext): void {
  ctx.check(image.composeErrors.length === 0, `not valid YAML: ${image.composeErrors.join('; ')}`)
  const service = image.service
  if (!service) return ctx.check(false, `no service named ${SERVICE_NAME}`)
  const port = image.env.get('PORT') ?? ''
  const ports = (service.ports ?? []).map(containerPort)
  const exposed = stageExposed(image.runtime)
  ctx.check(ports.length > 0 && ports.every((p) => p === port), `container ports [${ports.join(', ')}] are not the image PORT ${port}`)
  ctx.check(exposed.includes(port), `EXPOSE ${exposed.join(' ')} does not include the image PORT ${port}`)
  ctx.check([undefined, port].includes(image.serviceEnv.PORT), `environment PORT ${image.serviceEnv.PORT} is not the image PORT ${port}`)

  const dataDir = posix.dirname(composedEnv(image).DATABASE_PATH ?? '')
  const targets = (service.volumes ?? []).map((volume) => volumeMount(volume).target)
  const imageVolumes = stageVolumes(image.runtime)
  ctx.check(targets.includes(dataDir), `no volume is mounted at ${dataDir}, the folder of DATABASE_PATH (targets: ${targets.join(', ') || 'none'})`)
  ctx.check(imageVolumes.includes(dataDir), `${dataDir} is not a VOLUME of the image (VOLUME ${imageVolumes.join(' ') || 'none'})`)

  const unknown = Object.keys(image.serviceEnv).filter((key) => !CONFIG_KEYS.has(key))
  ctx.check(unknown.length === 0, `environment names keys that are not in ConfigSchema: ${unknown.join(', ')}`)
  const test = service.healthcheck?.test
  const disabled = service.healthcheck?.disable === true || (Array.isArray(test) ? test[0] === 'NONE' : test === 'NONE')
  ctx.check(test !== undefined && test.length > 0 && !disabled, 'the service has no healthcheck')
}

// ---------------------------------------------------------------- building a stage

interface BuiltStage { name: string, root: string, workdir: string, env: Map<string, string>, user: string | undefined }

// Programs named at the start of each command of a RUN (after any VAR=value prefixes).
function runPrograms (form: string[] | string): string[] {
  if (Array.isArray(form)) return form.slice(0, 1)
  return form.split(/&&|\|\||[;|]/).map((part) => shellWords(part).find((word) => !/^\w+=/.test(word)) ?? '').filter(Boolean)
}

function runKind (form: string[] | string): 'node' | 'os-packages' | 'folders' | 'unknown' {
  const programs = runPrograms(form)
  if (programs.some((program) => OS_PACKAGE_PROGRAMS.has(program))) return 'os-packages'
  if (programs.length > 0 && programs.every((program) => NODE_PROGRAMS.has(program))) return 'node'
  if (programs.length > 0 && programs.every((program) => FOLDER_PROGRAMS.has(program))) return 'folders'
  return 'unknown'
}

// The package names after `install` in an OS package command.
function osPackages (form: string[] | string): string[] {
  const words = Array.isArray(form) ? form : shellWords(form)
  const start = words.indexOf('install') + 1
  const end = words.findIndex((word, i) => i >= start && /^(&&|\|\||;|\|)$/.test(word))
  return start > 0 ? words.slice(start, end < 0 ? undefined : end).filter((word) => !word.startsWith('-')) : []
}

function onPath (program: string): boolean {
  return hostPath().split(delimiter).some((dir) => dir && existsSync(join(dir, program)))
}

// The image's value, or this machine's equivalent where the image names one of its own paths.
function localValue (key: string, value: string): string {
  return key.toLowerCase() === 'npm_config_nodedir' ? LOCAL_NODE_PREFIX : value
}

// A RUN step's environment: the stage's ENV (localised) over only what npm needs from this machine.
function buildEnv (env: Map<string, string>): NodeJS.ProcessEnv {
  const result: NodeJS.ProcessEnv = { PATH: hostPath() }
  for (const key of BUILD_ENV_PASSTHROUGH) if (process.env[key] !== undefined) result[key] = process.env[key]
  for (const [key, value] of env) result[key] = localValue(key, value)
  return { ...result, ...BUILD_ENV_FIXED }
}

function noteBase (stage: Stage, ctx: StepContext): void {
  const imageMajor = /^node:(\d+)/.exec(stage.base)?.[1]
  const localMajor = process.versions.node.split('.')[0]
  ctx.note(`${stage.base} → this machine's Node ${process.version}${imageMajor && imageMajor !== localMajor ? ` (the image has Node ${imageMajor})` : ''}`)
  for (const [key, value] of stageEnv(stage)) {
    if (localValue(key, value) !== value) ctx.note(`ENV ${key}=${value} → ${localValue(key, value)} (this machine's Node headers, so node-gyp downloads none)`)
  }
  if (instructions(stage, 'RUN').some((args) => runKind(execOrShell(args)) === 'node')) {
    ctx.note('npm runs with npm_config_build_from_source=true: better-sqlite3 compiles here instead of fetching a binary from GitHub')
  }
}

async function runStep (stage: BuiltStage, args: string, ctx: StepContext): Promise<void> {
  const form = execOrShell(args)
  const kind = runKind(form)
  if (kind === 'os-packages') {
    const packages = osPackages(form)
    const missing = packages.filter((name) => !onPath(name))
    return ctx.note(`skipped: installs OS packages (${packages.join(' ')}); this machine has them${missing.length ? `, except maybe ${missing.join(' ')} (not on PATH)` : ''}`)
  }
  if (kind === 'folders') return ctx.note(`skipped: prepares image folders and ownership; here the service writes under its temp folder as ${userInfo().username}`)
  if (kind === 'unknown') throw new Error('not an npm/node command, an OS package install or a folder set-up: this check cannot reproduce it without Docker (teach scripts/check-image.ts)')
  const argv = typeof form === 'string' ? ['/bin/sh', '-c', form] : form
  const result = await runToEnd(argv, onDisk(stage.root, stage.workdir), buildEnv(stage.env), RUN_TIMEOUT_MS)
  if (result.code !== 0) throw new Error(`${describe(result, RUN_TIMEOUT_MS)}; the end of its output:\n${result.output}`)
}

function copyFile (from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true })
  rmSync(to, { force: true })
  if (lstatSync(from).isSymbolicLink()) symlinkSync(readlinkSync(from), to) // links stay links, as in a layer
  else copyFileSync(from, to)
}

// Copies exactly what one COPY copies: from the build context (minus .dockerignore) or from an earlier stage's folder.
function copyStep (stage: BuiltStage, args: string, sources: Map<string, BuiltStage>, image: Image, ctx: StepContext): void {
  const copy = parseCopy(args)
  const root = copy.from === undefined ? ROOT : sources.get(copy.from)?.root
  if (!root) throw new Error(`copies from stage ${copy.from ?? ''}, which this check has not built`)
  const rules = copy.from === undefined ? image.ignoreRules : []
  const missing = copy.sources.filter((source) => plannedCopies(root, { ...copy, sources: [source] }, stage.workdir, rules).length === 0)
  if (missing.length > 0) throw new Error(`nothing to copy for ${missing.join(', ')} (missing, or left out by .dockerignore): docker build would fail here`)
  const files = plannedCopies(root, copy, stage.workdir, rules)
  for (const { from, to } of files) copyFile(join(root, from), onDisk(stage.root, to))
  ctx.note(`${files.length} file${files.length === 1 ? '' : 's'}`)
}

function shortName (text: string): string {
  return text.length > STEP_NAME_CHARS ? `${text.slice(0, STEP_NAME_CHARS - 1)}…` : text
}

// Follows the stage's instructions in order in a folder that stands for its `/`.
async function buildStage (stage: Stage, root: string, sources: Map<string, BuiltStage>, image: Image): Promise<BuiltStage> {
  const built: BuiltStage = { name: stage.name, root, workdir: '/', env: new Map(), user: undefined }
  await step(`${stage.name}: FROM ${stage.base}`, (ctx) => noteBase(stage, ctx))
  for (const { keyword, args } of stage.instructions) {
    const name = shortName(`${stage.name}: ${keyword} ${args}`)
    if (keyword === 'WORKDIR') {
      built.workdir = posix.resolve(built.workdir, args.trim())
      mkdirSync(onDisk(root, built.workdir), { recursive: true }) // Docker creates it
    } else if (keyword === 'ENV') {
      for (const [key, value] of parseEnv(args)) built.env.set(key, value)
    } else if (keyword === 'USER') {
      built.user = args.trim()
    } else if (keyword === 'COPY') {
      await step(name, (ctx) => copyStep(built, args, sources, image, ctx))
    } else if (keyword === 'RUN') {
      await step(name, (ctx) => runStep(built, args, ctx))
    } else if (!IGNORED_KEYWORDS.has(keyword)) {
      await step(name, () => { throw new Error(`${keyword} is not supported by this check (teach scripts/check-image.ts)`) })
    }
  }
  return built
}

// ---------------------------------------------------------------- what the runtime stage holds

interface Manifest { dependencies?: Record<string, string>, devDependencies?: Record<string, string> }
interface Lockfile { packages: Record<string, { dev?: boolean }> }

function readJson<T> (path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T
}

function checkRuntimeFiles (runtime: BuiltStage, ctx: StepContext): void {
  const app = onDisk(runtime.root, runtime.workdir)
  const has = (path: string): boolean => existsSync(join(app, path))
  ctx.check(has('dist/server.js'), 'dist/server.js is missing')
  // The dashboard (/ui/): its page and every hashed asset the page links to.
  if (!has('dist/ui/index.html')) ctx.check(false, 'dist/ui/index.html is missing: the dashboard was not built')
  else {
    const linked = [...readFileSync(join(app, 'dist/ui/index.html'), 'utf8').matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((match) => match[1]!)
    const missingAssets = linked.filter((path) => !has(`dist/ui/${path}`))
    ctx.check(linked.length >= 2 && missingAssets.length === 0, `the dashboard's assets are missing: ${missingAssets.join(', ') || 'the page links none'}`)
  }
  const migrations = readdirSync(join(ROOT, 'migrations')).filter((name) => name.endsWith('.sql'))
  const missingMigrations = migrations.filter((name) => !has(`migrations/${name}`))
  ctx.check(migrations.length > 0 && missingMigrations.length === 0, `migrations missing: ${missingMigrations.join(', ') || 'the repository has none'}`)
  ctx.check(has('node_modules/better-sqlite3/package.json'), 'node_modules/better-sqlite3 is missing')
  ctx.check(has(ADDON), `${ADDON} is missing: better-sqlite3 was not compiled`)

  const manifest = readJson<Manifest>(join(ROOT, 'package.json'))
  const lock = readJson<Lockfile>(join(ROOT, 'package-lock.json'))
  const missingDeps = Object.keys(manifest.dependencies ?? {}).filter((name) => !has(`node_modules/${name}/package.json`))
  ctx.check(missingDeps.length === 0, `dependencies missing: ${missingDeps.join(', ')}`)
  const devDeps = Object.keys(manifest.devDependencies ?? {})
  const devOnly = devDeps.filter((name) => lock.packages[`node_modules/${name}`]?.dev === true)
  const alsoProduction = devDeps.filter((name) => !devOnly.includes(name))
  if (alsoProduction.length > 0) ctx.note(`kept, as npm prune does: ${alsoProduction.join(', ')} (devDependencies that production packages also need)`)
  const present = devOnly.filter((name) => has(`node_modules/${name}`))
  ctx.check(present.length === 0, `devDependencies in the image: ${present.join(', ')}`)
}

// ---------------------------------------------------------------- running the container

interface Container { cwd: string, env: NodeJS.ProcessEnv }

// The container's environment with what must differ on this machine, each difference printed.
async function containerFor (image: Image, runtime: BuiltStage, ctx: StepContext): Promise<Container> {
  const env = composedEnv(image)
  const port = await freePort()
  const databasePath = onDisk(runtime.root, posix.resolve(runtime.workdir, env.DATABASE_PATH ?? ''))
  ctx.note(`PORT ${env.PORT} → ${port} and HOST ${env.HOST} → 127.0.0.1: a free loopback port, so the check runs beside anything else`)
  ctx.note(`DATABASE_PATH ${env.DATABASE_PATH} → ${databasePath}: the image's ${posix.dirname(env.DATABASE_PATH ?? '')} is not writable here`)
  if (image.service?.env_file) ctx.note('env_file is not read: it holds this machine\'s settings, not the image\'s')
  if (runtime.user) ctx.note(`runs as ${userInfo().username}, not USER ${runtime.user}`)
  return {
    cwd: onDisk(runtime.root, runtime.workdir),
    env: { PATH: hostPath(), ...env, PORT: String(port), HOST: '127.0.0.1', DATABASE_PATH: databasePath, NODE_ENV: 'production' }
  }
}

async function readyz (container: Container): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${container.env.PORT}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    return res.status
  } catch {
    return undefined // not listening yet
  }
}

// Polls /readyz until 200, the server exits, or READY_TIMEOUT_MS passes.
async function waitReady (container: Container, server: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline && server.exitCode === null && server.signalCode === null) {
    if (await readyz(container) === 200) return true
    await sleep(READY_POLL_MS)
  }
  return false
}

// Runs the HEALTHCHECK as Docker does: inside the container (its WORKDIR and environment), bounded by its --timeout.
async function healthcheck (image: Image, container: Container): Promise<{ result: Finished, timeoutMs: number }> {
  const [form, ...command] = image.healthcheck?.test ?? []
  const argv = form === 'CMD-SHELL' ? ['/bin/sh', '-c', command.join(' ')] : command
  const timeoutMs = durationMs(image.healthcheck?.options.timeout, DOCKER_HEALTHCHECK_TIMEOUT)
  return { result: await runToEnd(argv, container.cwd, container.env, timeoutMs), timeoutMs }
}

async function runContainer (image: Image, runtime: BuiltStage): Promise<void> {
  const cmd = execOrShell(instructions(image.runtime, 'CMD').at(-1) ?? '')
  const stopGraceMs = durationMs(image.service?.stop_grace_period, COMPOSE_STOP_GRACE)
  let container: Container | undefined
  let server: { child: ChildProcess, output: () => string } | undefined

  await step(`CMD ${JSON.stringify(cmd)} starts and GET /readyz answers 200`, async (ctx) => {
    if (!Array.isArray(cmd) || cmd.length === 0) throw new Error('CMD is not in exec form: a shell would be PID 1 and swallow SIGTERM')
    if (instructions(image.runtime, 'ENTRYPOINT').length > 0) throw new Error('ENTRYPOINT is not supported by this check')
    container = await containerFor(image, runtime, ctx)
    server = start(cmd, container.cwd, container.env)
    if (!await waitReady(container, server.child)) {
      const { exitCode, signalCode } = server.child
      const why = exitCode === null && signalCode === null ? `not ready within ${duration(READY_TIMEOUT_MS)}` : `exited (${signalCode ?? `code ${exitCode}`}) before it was ready`
      throw new Error(`${why}; the end of its output:\n${server.output()}`)
    }
    ctx.check(existsSync(String(container.env.DATABASE_PATH)), 'the database file was not created at DATABASE_PATH')
  })
  if (!container || !server) return

  const ready = container
  await step('HEALTHCHECK passes while the service runs', async (ctx) => {
    if (!image.healthcheck) return ctx.check(false, 'the image has no HEALTHCHECK')
    const { result, timeoutMs } = await healthcheck(image, ready)
    ctx.check(result.code === 0, `${describe(result, timeoutMs)}\n${result.output}`)
  })

  const { child, output } = server
  await step(`SIGTERM: exits with code 0 within stop_grace_period ${duration(stopGraceMs)}`, async (ctx) => {
    child.kill('SIGTERM') // to the server alone, as Docker signals PID 1
    const exit = await exitWithin(child, stopGraceMs)
    if (!exit) throw new Error(`still running after ${duration(stopGraceMs)}: Docker would SIGKILL it`) // and a check after it means nothing
    ctx.check(exit.code === 0, `${exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`}; the end of its output:\n${output()}`)
  })

  if (!image.healthcheck) return // reported above
  await step('HEALTHCHECK fails once the service is gone', async (ctx) => {
    const { result } = await healthcheck(image, ready)
    ctx.check(result.code !== 0, 'it still exits 0')
  })
}

// ---------------------------------------------------------------- main

async function main (): Promise<boolean> {
  const started = performance.now()
  try {
    const image = await step('read the Dockerfile, .dockerignore and docker-compose.yml', () => readImage())
    await step('docker-compose.yml: valid YAML; port, volume, environment names and healthcheck agree with the image and ConfigSchema',
      (ctx) => checkCompose(image, ctx))
    await step(`docker-compose.yml profile ${PROFILE} and deploy/nginx.conf: PostgreSQL, two replicas and nginx wired to each other and to the image`,
      (ctx) => checkReplicaFiles(ROOT, { compose: image.compose, imageEnv: Object.fromEntries(image.env) }, ctx))
    await step('deploy/nginx.conf passes nginx -t', (ctx) => checkNginxSyntax(ROOT, ctx))
    const builder = await buildStage(image.builder, tempFolder('builder'), new Map(), image)
    const runtime = await buildStage(image.runtime, tempFolder('runtime'), new Map([[builder.name, builder]]), image)
    await step(`${runtime.name}: holds dist/server.js, the built dashboard, the migrations and better-sqlite3, and no dev-only package`, (ctx) => checkRuntimeFiles(runtime, ctx))
    await runContainer(image, runtime)
    await runReplicaLayout(ROOT, { compose: image.compose, appDir: onDisk(runtime.root, runtime.workdir), imageEnv: Object.fromEntries(image.env), cmd: execOrShell(instructions(image.runtime, 'CMD').at(-1) ?? '') as string[] })
  } catch (err) {
    if (!(err instanceof Abort)) {
      results.push({ name: 'the check itself', ok: false })
      console.log(`✗ the check itself failed: ${err instanceof Error ? err.stack : String(err)}`)
    }
  } finally {
    cleanUp()
  }
  const failed = results.filter((result) => !result.ok)
  const took = duration(performance.now() - started)
  console.log(failed.length === 0
    ? `PASS image check: ${results.length} steps in ${took}`
    : `FAIL image check: ${failed.length} of ${results.length} steps failed in ${took} (${failed.map((result) => result.name).join('; ')})`)
  return failed.length === 0
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp()
    process.exit(signal === 'SIGINT' ? 130 : 143) // the shell's 128 + signal number
  })
}

process.exitCode = await main() ? 0 : 1
