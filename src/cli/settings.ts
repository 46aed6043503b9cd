// The CLI's settings: flags, then S2V_URL / S2V_TOKEN, then the config file, then the default. The CLI's only reader of the environment.
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { usageError } from './exit-codes.js'

export const DEFAULT_URL = 'http://127.0.0.1:3000'
// Owner-only: the file holds a bearer token.
const FILE_MODE = 0o600
const DIR_MODE = 0o700

export type StoredConfig = { url?: string, token?: string }
export type Settings = { url: string, token: string | undefined, urlSource: Source, tokenSource: Source | undefined }
export type Source = 'flag' | 'env' | 'config' | 'default'
export type Env = Readonly<Record<string, string | undefined>>

/** `$XDG_CONFIG_HOME/s2v` (else `~/.config/s2v`; `%APPDATA%\s2v` on Windows). */
export function configDir (env: Env): string {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 's2v')
  if (process.platform === 'win32' && env.APPDATA) return join(env.APPDATA, 's2v')
  return join(env.HOME || homedir(), '.config', 's2v')
}

export function configPath (env: Env): string {
  return join(configDir(env), 'config.json')
}

export async function readStoredConfig (env: Env): Promise<StoredConfig> {
  let text: string
  try {
    text = await readFile(configPath(env), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw usageError(`${configPath(env)} is not valid JSON; fix it or remove it and run s2v config set again`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {}
  const { url, token } = parsed as Record<string, unknown>
  return { ...(typeof url === 'string' ? { url } : {}), ...(typeof token === 'string' ? { token } : {}) }
}

/** Writes the whole file owner-only: a temporary file created 0600, then an atomic rename. */
export async function writeStoredConfig (env: Env, config: StoredConfig): Promise<string> {
  const dir = configDir(env)
  await mkdir(dir, { recursive: true, mode: DIR_MODE })
  const path = configPath(env)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: FILE_MODE })
  // The umask cannot widen 0600, but an existing file of the same name could have been created looser.
  await chmod(tmp, FILE_MODE)
  await rename(tmp, path)
  return path
}

export async function configFileMode (env: Env): Promise<number | null> {
  try {
    return (await stat(configPath(env))).mode & 0o777
  } catch {
    return null
  }
}

export function normaliseUrl (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw usageError(`not a URL: ${value} (expected e.g. ${DEFAULT_URL})`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`the service URL must be http(s): ${value}`)
  return url.href.replace(/\/+$/, '')
}

export async function resolveSettings (flags: { url?: string | undefined, token?: string | undefined }, env: Env): Promise<Settings> {
  const stored = await readStoredConfig(env)
  const pick = (flag: string | undefined, fromEnv: string | undefined, fromFile: string | undefined): [string, Source] | undefined => {
    if (flag !== undefined && flag !== '') return [flag, 'flag']
    if (fromEnv !== undefined && fromEnv !== '') return [fromEnv, 'env']
    if (fromFile !== undefined && fromFile !== '') return [fromFile, 'config']
    return undefined
  }
  const [url, urlSource] = pick(flags.url, env.S2V_URL, stored.url) ?? [DEFAULT_URL, 'default' as const]
  const token = pick(flags.token, env.S2V_TOKEN, stored.token)
  return { url: normaliseUrl(url), token: token?.[0], urlSource, tokenSource: token?.[1] }
}
