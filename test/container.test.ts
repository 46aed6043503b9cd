// Checks the container recipe without a Docker engine: Dockerfile, .dockerignore and compose agree with the app, and the production install runs it.
import t from 'tap'
import { freePort } from './helper.js'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import semver from 'semver'
import { PRODUCTION_ENV, PRODUCTION_NODE_FLAGS } from '../bench/servers.js'
import { ConfigSchema, loadConfig } from '../src/config.js'
import { composeEnvironment, containerPort, readCompose, volumeMount } from '../scripts/compose.js'
import {
  contextFiles, copiesWithWorkdir, copyTarget, durationMs, execOrShell, instructions, isIgnored, parseDockerfile, parseDockerignore,
  parseHealthcheck, stageEnv, stageExposed, stageVolumes, type Stage
} from '../scripts/dockerfile.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CONFIG_KEYS = new Set(Object.keys(ConfigSchema.properties))
const NODE_ENV_KEY = 'NODE_ENV' // read by Node libraries, not by our config
// As `npm start` runs it, and as the bench measures it (bench/servers.ts).
const EXPECTED_CMD = ['node', ...PRODUCTION_NODE_FLAGS, 'dist/server.js']
const RUNTIME_FILES = new Map([['package.json', 'file'], ['node_modules', 'folder'], ['dist', 'folder'], ['migrations', 'folder']]) // what runs, from the builder
const BUILD_SCRIPTS = ['scripts/build-server.ts', 'scripts/build-ui.ts'] // what `npm run build` runs after tsc
// What `npm run build` reads: the build scripts' own imports of scripts/ are read from them, so a new helper they import
// cannot be left out of the image's COPY.
const BUILD_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'ui', ...BUILD_SCRIPTS, ...scriptImports(BUILD_SCRIPTS)]
// The Node versions this repository promises: the image's LTS line, the oldest Node that runs the service, and the
// oldest that runs its development tools (tap's c8, neostandard and yargs ask for 20.19).
const LTS_MAJOR = 24
const RUNTIME_FLOOR = '20.12.0'
const DEVELOPMENT_FLOOR = '20.19.0'
const BUILD_TOOLS = /(?<![\w.-])(python3?|g\+\+|gcc|make|build-essential)(?![\w.-])/

const FILE_TIMEOUT_MS = 180_000 // a cold npm cache downloads the production dependencies
const NPM_TIMEOUT_MS = 120_000 // npm ci from a warm cache takes ~3 s; a cold one needs the network
const BUILD_TIMEOUT_MS = 120_000 // tsc over src/ when dist/ is missing
const READY_TIMEOUT_MS = 60_000 // start-up plus migrations on an empty database (6-19 s measured at load average 20)
const READY_POLL_MS = 100 // short, so the test waits little beyond the moment the server is ready
const REQUEST_TIMEOUT_MS = 2_000 // one local request; anything longer is a hang
const EXIT_TIMEOUT_MS = 5_000 // SIGTERM with no request in flight should exit at once, well inside the 10 s grace
const HEALTHCHECK_TIMEOUT_MS = 10_000 // one `node -e` start plus a local fetch bounded at 3 s
const NPM_OUTPUT_BYTES = 16 * 1024 * 1024 // npm's log on failure can be long; keep all of it for the diagnosis

const run = promisify(execFile)

t.setTimeout(FILE_TIMEOUT_MS)

// ---------------------------------------------------------------- the files under test

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const runtime = dockerfile.at(-1) as Stage
const runtimeCopies = copiesWithWorkdir(runtime)
const builderName = runtimeCopies.find(({ copy }) => copy.from)?.copy.from ?? ''
const builder = dockerfile.find((stage) => stage.name === builderName)
const imageEnv = stageEnv(runtime)
const imageHealthcheck = parseHealthcheck(instructions(runtime, 'HEALTHCHECK').at(-1) ?? '')
const imageVolumes = stageVolumes(runtime)
const imageExposed = stageExposed(runtime)
const ignoreRules = parseDockerignore(existsSync(join(ROOT, '.dockerignore')) ? readFileSync(join(ROOT, '.dockerignore'), 'utf8') : '')
const { errors: composeErrors, compose } = readCompose(join(ROOT, 'docker-compose.yml')) // the YAML test reports the errors
const service = compose.services?.['s2v-callback'] ?? {}
const serviceEnv = composeEnvironment(service)

t.test('Dockerfile', async (t) => {
  t.ok(dockerfile.length >= 2, 'has a build stage and a runtime stage')
  if (!builder) return t.fail(`the runtime stage copies from a stage named ${JSON.stringify(builderName)} that exists`)
  t.not(runtime.base, builder.name, 'the runtime stage starts from a clean base, not from the builder with its compilers')

  t.test('every COPY from the build context names files that exist and that .dockerignore keeps', async (t) => {
    for (const stage of dockerfile) {
      for (const { copy } of copiesWithWorkdir(stage).filter(({ copy }) => !copy.from)) {
        for (const source of copy.sources) {
          const files = contextFiles(ROOT, source)
          t.ok(files.length > 0, `${stage.name}: ${source} exists in the repository`)
          t.same(files.filter((file) => isIgnored(ignoreRules, file)), [], `${stage.name}: .dockerignore keeps all of ${source}`)
        }
      }
    }
  })

  t.test('the builder installs, builds and prunes in an order that caches dependencies', async (t) => {
    const runs = builder.instructions.map((i) => (i.keyword === 'RUN' ? i.args : ''))
    const ci = runs.findIndex((args) => /\bnpm ci\b/.test(args))
    const build = runs.findIndex((args) => /\bnpm run build\b/.test(args))
    const prune = runs.findIndex((args) => /\bnpm prune\b[^&;]*--omit[= ]dev\b/.test(args))
    t.ok(runs.some((args) => /\bpython3\b/.test(args) && /\bg\+\+/.test(args) && /\bmake\b/.test(args)), 'installs python3, make and g++ for better-sqlite3')
    t.ok(ci >= 0, 'runs npm ci')
    t.ok(build > ci, 'runs npm run build after npm ci')
    t.ok(prune >= build, 'runs npm prune --omit=dev after the build')
    const copies = copiesWithWorkdir(builder).filter(({ copy }) => !copy.from)
    const copiedAt = (name: string): number => copies.find(({ copy }) => copy.sources.some((s) => posix.normalize(s).replace(/\/+$/, '') === name))?.index ?? -1
    for (const name of BUILD_INPUTS) t.ok(copiedAt(name) >= 0 && copiedAt(name) < build, `copies ${name} before the build`)
    t.ok(copiedAt('package-lock.json') < ci && copiedAt('package.json') < ci, 'copies the manifests before npm ci')
    t.ok(copiedAt('src') > ci, 'copies src/ after npm ci, so a code change keeps the dependency layer')
  })

  t.test('the runtime stage takes what runs from the builder', async (t) => {
    const builderWorkdir = copiesWithWorkdir(builder).at(-1)?.workdir ?? '/'
    for (const [name, kind] of RUNTIME_FILES) {
      const found = runtimeCopies.find(({ copy }) => copy.from === builder.name &&
        copy.sources.some((source) => posix.resolve(builderWorkdir, source) === posix.join(builderWorkdir, name)))
      if (!found) {
        t.fail(`copies ${name} from ${builder.name}`)
        continue
      }
      t.equal(copyTarget(found.workdir, found.copy, name, kind), posix.join(found.workdir, name), `copies ${name} to ${posix.join(found.workdir, name)}`)
    }
    t.notOk(instructions(runtime, 'RUN').some((args) => BUILD_TOOLS.test(args)), 'installs no build tools')
  })

  t.test('the runtime stage runs as a non-root user who owns the data volume', async (t) => {
    const user = instructions(runtime, 'USER').at(-1)?.trim() ?? ''
    t.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user || '(none)'} is not root`)
    const dataDir = posix.dirname(imageEnv.get('DATABASE_PATH') ?? '')
    t.ok(imageVolumes.includes(dataDir), `VOLUME ${dataDir} holds DATABASE_PATH`)
    const volumeAt = runtime.instructions.findIndex((i) => i.keyword === 'VOLUME')
    const chownAt = runtime.instructions.findIndex((i) => i.keyword === 'RUN' && i.args.includes(dataDir) && new RegExp(`chown\\s+(-\\S+\\s+)*${user.split(':')[0]}\\b`).test(i.args))
    t.ok(chownAt >= 0 && chownAt < volumeAt, `${dataDir} is created and given to ${user} before VOLUME, so a new volume is writable`)
  })

  t.test('the runtime stage starts the compiled server and checks its readiness without curl', async (t) => {
    t.same(execOrShell(instructions(runtime, 'CMD').at(-1) ?? ''), EXPECTED_CMD, `CMD is the exec form of ${EXPECTED_CMD.join(' ')}`)
    t.ok(imageHealthcheck, 'has a HEALTHCHECK')
    const command = imageHealthcheck?.test.join(' ') ?? ''
    t.notMatch(command, /\b(curl|wget)\b/, 'the HEALTHCHECK needs neither curl nor wget')
    t.match(command, /\/readyz\b/, 'the HEALTHCHECK asks /readyz')
  })

  t.test('the runtime environment is part of the config contract', async (t) => {
    for (const key of imageEnv.keys()) t.ok(CONFIG_KEYS.has(key) || key === NODE_ENV_KEY || key in PRODUCTION_ENV, `ENV ${key} is in ConfigSchema, NODE_ENV or the bench's production environment`)
    for (const [key, value] of Object.entries(PRODUCTION_ENV)) t.equal(imageEnv.get(key), value, `ENV ${key}=${value}, as npm start sets it`)
    t.equal(imageEnv.get('NODE_ENV'), 'production', 'NODE_ENV=production')
    t.ok(imageExposed.includes(imageEnv.get('PORT') ?? ''), `EXPOSE includes PORT ${imageEnv.get('PORT')}`)
    t.doesNotThrow(() => loadConfig(Object.fromEntries(imageEnv)), 'the image defaults pass loadConfig')
  })
})

t.test('docker-compose.yml', async (t) => {
  t.same(composeErrors, [], 'is valid YAML')
  // `docker compose up` without a profile: the one service on SQLite; the rest is the production layout's (profile
  // replicas, checked by npm run check:image).
  const unprofiled = Object.entries(compose.services ?? {}).filter(([, entry]) => entry.profiles === undefined).map(([name]) => name)
  t.same(unprofiled, ['s2v-callback'], 'without a profile, defines the one service s2v-callback')
  t.same(Object.entries(compose.services ?? {}).filter(([, entry]) => !(entry.profiles ?? ['replicas']).includes('replicas')).map(([name]) => name), [], 'every other service is in profile replicas')
  const context = typeof service.build === 'string' ? service.build : service.build?.context
  t.equal(context, '.', 'builds from this folder')

  t.test('ports and paths match the image', async (t) => {
    const port = imageEnv.get('PORT') ?? ''
    t.same((service.ports ?? []).map(containerPort), [port], `publishes container port ${port}`)
    t.ok(imageExposed.includes(port), 'which the image EXPOSEs')
    t.equal(serviceEnv.PORT, port, 'and sets as PORT')
    const dataDir = posix.dirname(imageEnv.get('DATABASE_PATH') ?? '')
    t.equal(posix.dirname(serviceEnv.DATABASE_PATH ?? ''), dataDir, `DATABASE_PATH lives in ${dataDir}, as in the image`)
    const mount = (service.volumes ?? []).map(volumeMount).find((m) => m.target === dataDir)
    t.ok(mount, `mounts a volume at ${dataDir}`)
    t.ok(imageVolumes.includes(mount?.target ?? ''), 'which is the image VOLUME')
    t.ok(mount && !/[./~]/.test(mount.source.charAt(0)) && Object.hasOwn(compose.volumes ?? {}, mount.source), `the named volume ${mount?.source} is declared at top level`)
  })

  t.test('the environment is part of the config contract and .env is optional', async (t) => {
    for (const key of Object.keys(serviceEnv)) t.ok(CONFIG_KEYS.has(key), `environment ${key} is in ConfigSchema`)
    const envFiles = Array.isArray(service.env_file) ? service.env_file : [service.env_file]
    const dotEnv = envFiles.find((file) => typeof file === 'object' && file.path === '.env')
    t.equal(typeof dotEnv === 'object' ? dotEnv.required : undefined, false, 'env_file .env is required: false, so it starts without one')
  })

  t.test('lifecycle settings mirror the image and the app', async (t) => {
    const check = service.healthcheck ?? {}
    const image = imageHealthcheck?.options ?? {}
    t.same(check.test, imageHealthcheck?.test, 'the healthcheck runs the image HEALTHCHECK command')
    t.equal(durationMs(check.interval, '30s'), durationMs(image.interval, '30s'), 'with the same interval')
    t.equal(durationMs(check.timeout, '30s'), durationMs(image.timeout, '30s'), 'the same timeout')
    t.equal(durationMs(check.start_period, '0s'), durationMs(image['start-period'], '0s'), 'the same start period')
    t.equal(check.retries ?? 3, Number(image.retries ?? 3), 'and the same retries')
    const graceMs = loadConfig(serviceEnv).SHUTDOWN_GRACE_MS // the compose value if set, else the schema default
    t.ok(durationMs(service.stop_grace_period, '10s') > graceMs, `stop_grace_period ${service.stop_grace_period} outlasts the app's ${graceMs} ms shutdown grace`)
    t.equal(service.restart, 'unless-stopped', 'restarts unless stopped')
  })

  const envExample = join(ROOT, '.env.example')
  t.test('.env.example documents exactly the config keys', { skip: existsSync(envExample) ? false : '.env.example is not written yet' }, async (t) => {
    // a commented-out `# KEY=` line documents an optional key too
    const named = new Set([...readFileSync(envExample, 'utf8').matchAll(/^\s*#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=/gm)].map((m) => m[1] as string))
    t.same([...named].filter((key) => !CONFIG_KEYS.has(key)), [], 'names no key outside ConfigSchema')
    t.same([...CONFIG_KEYS].filter((key) => !named.has(key)), [], 'names every key of ConfigSchema')
  })
})

// ---------------------------------------------------------------- the production install, for real

interface Lockfile { packages: Record<string, { dev?: boolean, devDependencies?: unknown }> }

/** The files of scripts/ that these scripts import, directly or through each other, as repository paths. */
function scriptImports (scripts: string[]): string[] {
  const found = new Set<string>()
  const visit = (path: string) => {
    for (const [, name] of readFileSync(join(ROOT, path), 'utf8').matchAll(/from '\.\/([\w-]+)\.js'/g)) {
      const imported = `scripts/${name}.ts`
      if (!found.has(imported)) { found.add(imported); visit(imported) }
    }
  }
  for (const script of scripts) visit(script)
  return [...found]
}

function readJson<T> (path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T
}

// Runs npm with a bounded time; resolves with npm's output either way so a failure can be shown.
async function npm (cwd: string, args: string[], timeout = NPM_TIMEOUT_MS): Promise<{ ok: boolean, output: string }> {
  try {
    const { stdout, stderr } = await run('npm', args, { cwd, timeout, maxBuffer: NPM_OUTPUT_BYTES })
    return { ok: true, output: stdout + stderr }
  } catch (err) {
    const { stdout = '', stderr = '', message } = err as { stdout?: string, stderr?: string, message: string }
    return { ok: false, output: `${message}\n${stdout}${stderr}` }
  }
}

// The manifests with the dev-only part removed: exactly the set `npm ci --omit=dev` and `npm prune --omit=dev` keep.
function writeProductionManifests (dir: string): void {
  const { devDependencies: _devDependencies, ...pkg } = readJson<Record<string, unknown>>(join(ROOT, 'package.json'))
  const lock = readJson<Lockfile>(join(ROOT, 'package-lock.json'))
  const packages = Object.fromEntries(Object.entries(lock.packages).filter(([path, entry]) => path === '' || entry.dev !== true))
  const { devDependencies: _rootDev, ...root } = packages[''] ?? {}
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2))
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ ...lock, packages: { ...packages, '': root } }, null, 2))
}

async function get (url: string): Promise<{ status: number, body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    return { status: res.status, body: await res.text() }
  } catch {
    return undefined // not listening yet
  }
}

// Polls until the URL answers 200, the child exits, or the time is up.
async function waitFor200 (url: string, child: ChildProcess): Promise<{ status: number, body: string } | undefined> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    const res = await get(url)
    if (res?.status === 200) return res
    await sleep(READY_POLL_MS)
  }
  return undefined
}

async function exitOf (child: ChildProcess, timeoutMs: number): Promise<{ code: number | null, signal: string | null } | undefined> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  const timer = sleep(timeoutMs, undefined, { ref: false })
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null }))
  return await Promise.race([exit, timer])
}

// Runs the image's HEALTHCHECK command as Docker would, against a server on the given port; null when it cannot run here.
async function healthcheckExit (port: number): Promise<number | null> {
  const [form, command, ...args] = imageHealthcheck?.test ?? []
  if (form !== 'CMD' || command !== 'node') return null // only a node exec form is sure to run the same on this machine
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, PORT: String(port) }, stdio: 'ignore' })
  const exit = await exitOf(child, HEALTHCHECK_TIMEOUT_MS)
  if (!exit) child.kill('SIGKILL')
  return exit?.code ?? null
}

t.test('npm start runs the service as the image does: the same node flags, the same allocator setting (an operator\'s own wins)', async (t) => {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const env = Object.entries(PRODUCTION_ENV).map(([key, value]) => `${key}=\${${key}:-${value}}`)
  t.equal(scripts.start, [...env, 'exec', ...EXPECTED_CMD].join(' '))
})

t.test('package-lock.json is in sync with package.json, as the builder npm ci requires', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 's2v-lock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  copyFileSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'))
  const { ok, output } = await npm(dir, ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'])
  t.ok(ok, 'npm ci accepts the lock file', { output: output.split('\n').filter((line) => /error/.test(line)).slice(0, 12).join('\n') })
})

t.test('the production dependencies alone run the compiled service', async (t) => {
  if (!existsSync(join(ROOT, 'dist/server.js'))) {
    const { output } = await npm(ROOT, ['run', 'build'], BUILD_TIMEOUT_MS)
    if (!existsSync(join(ROOT, 'dist/server.js'))) return t.fail('npm run build produces dist/server.js', { output })
  }
  // outside the repo, so Node cannot fall back on the repo's own node_modules
  const dir = mkdtempSync(join(tmpdir(), 's2v-runtime-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  writeProductionManifests(dir)
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })
  if (existsSync(join(ROOT, 'migrations'))) cpSync(join(ROOT, 'migrations'), join(dir, 'migrations'), { recursive: true })
  const install = await npm(dir, ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'])
  if (!install.ok) return t.fail('npm ci --omit=dev installs the production dependencies', { output: install.output })

  // --ignore-scripts skipped compiling better-sqlite3 (a minute of g++); the repo's addon was built for this same
  // Node and platform, and the point here is that the production dependency *set* suffices, not the compiler
  const addon = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'
  mkdirSync(dirname(join(dir, addon)), { recursive: true })
  copyFileSync(join(ROOT, addon), join(dir, addon))

  const lock = readJson<Lockfile>(join(ROOT, 'package-lock.json'))
  const devOnly = Object.keys(readJson<{ devDependencies?: Record<string, string> }>(join(ROOT, 'package.json')).devDependencies ?? {})
    .filter((name) => lock.packages[`node_modules/${name}`]?.dev === true)
  t.same(devOnly.filter((name) => existsSync(join(dir, 'node_modules', name))), [], 'no dev-only package is installed (typescript, tap, ...)')
  t.ok(devOnly.includes('typescript') && devOnly.includes('tap'), 'typescript and tap are among the dev-only packages checked')

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const databasePath = join(dir, 'data', 'nested', 's2v.db') // a missing folder, as on a fresh volume
  const env = {
    PATH: process.env.PATH, // nothing else from this shell: the service sees only what the container would give it
    ...Object.fromEntries(imageEnv),
    ...serviceEnv,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_PATH: databasePath,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn'
  }
  let output = ''
  const child = spawn(process.execPath, EXPECTED_CMD.slice(1), { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') }) // whatever happens below, no server outlives the test
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })

  const ready = await waitFor200(`${base}/readyz`, child)
  if (!ready) return t.fail(`GET /readyz answers 200 within ${READY_TIMEOUT_MS} ms`, { output, exitCode: child.exitCode })
  t.same(JSON.parse(ready.body), { status: 'ok' }, 'GET /readyz answers 200 {"status":"ok"}')
  t.equal((await get(`${base}/healthz`))?.status, 200, 'GET /healthz answers 200')
  t.ok(existsSync(databasePath), 'the database file is created, folder included, at DATABASE_PATH')
  t.equal(await healthcheckExit(port), 0, 'the image HEALTHCHECK command passes against the running server')

  child.kill('SIGTERM')
  const exit = await exitOf(child, EXIT_TIMEOUT_MS)
  t.same(exit, { code: 0, signal: null }, `exits with code 0 within ${EXIT_TIMEOUT_MS} ms of SIGTERM`, { output })
  t.equal(await healthcheckExit(port), 1, 'the HEALTHCHECK command fails once the server is gone')
})

t.test('Node versions: the image and CI run the current LTS; every dependency supports the Node versions the README claims', async (t) => {
  for (const stage of dockerfile) t.equal(stage.base, `node:${LTS_MAJOR}-bookworm-slim`, `${stage.name}: on the current LTS`)
  t.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), new RegExp(`^NODE_LTS_MAJOR=${LTS_MAJOR}$`, 'm'), 'CI tests the image\'s Node too')

  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
  t.equal(semver.minVersion(pkg.engines.node)?.version, RUNTIME_FLOOR, 'engines says what the README says')
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string, dev?: boolean, engines?: unknown }> }
  // What npm ci would warn about (EBADENGINE) on a given Node version, production or development dependencies.
  const refusing = (version: string, dev: boolean) => Object.entries(lock.packages)
    .filter(([path, entry]) => path !== '' && Boolean(entry.dev) === dev)
    .flatMap(([path, entry]) => {
      const range = (entry.engines as { node?: unknown } | undefined)?.node
      return typeof range === 'string' && !semver.satisfies(version, range) ? [`${path.replace(/^.*node_modules\//, '')}@${entry.version} needs Node ${range}`] : []
    })
  for (const version of [RUNTIME_FLOOR, `${LTS_MAJOR}.0.0`]) t.same(refusing(version, false), [], `the production dependencies run on Node ${version}`)
  for (const version of [DEVELOPMENT_FLOOR, `${LTS_MAJOR}.0.0`]) t.same(refusing(version, true), [], `the development tools run on Node ${version}`)
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  t.match(readme, `Node ${RUNTIME_FLOOR.replace(/\.0$/, '')} or newer`, 'the README states the runtime floor')
  t.match(readme, `Node ${DEVELOPMENT_FLOOR.replace(/\.0$/, '')} or newer`, 'and the development floor')
})
