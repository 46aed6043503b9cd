// Reads the parts of a compose service the container test and the image check compare with the image.
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'

export interface ComposeService {
  build?: string | { context?: string }
  image?: string
  profiles?: string[]
  depends_on?: string[] | Record<string, { condition?: string }>
  ports?: Array<string | number | { target?: number | string }>
  env_file?: string | Array<string | { path: string, required?: boolean }>
  environment?: Record<string, string | number | boolean | null> | string[]
  volumes?: Array<string | { type?: string, source?: string, target?: string }>
  healthcheck?: { test?: string[] | string, interval?: string, timeout?: string, start_period?: string, retries?: number, disable?: boolean }
  stop_grace_period?: string
  restart?: string
}
export interface ComposeFile { services?: Record<string, ComposeService>, volumes?: Record<string, unknown> }

// The parsed file, or an empty one plus the YAML errors (callers report them).
export function readCompose (path: string): { errors: string[], compose: ComposeFile } {
  const document = parseDocument(readFileSync(path, 'utf8'))
  const errors = document.errors.map((error) => error.message)
  return { errors, compose: (errors.length === 0 ? document.toJS() ?? {} : {}) as ComposeFile }
}

export function composeEnvironment (service: ComposeService): Record<string, string> {
  const env = service.environment ?? {}
  const entries = Array.isArray(env)
    ? env.map((item) => [item.split('=')[0] ?? '', item.includes('=') ? item.slice(item.indexOf('=') + 1) : ''])
    : Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)])
  return Object.fromEntries(entries)
}

// The container side of `[ip:]host:container[/proto]` or of the long form.
export function containerPort (port: string | number | { target?: number | string }): string {
  if (typeof port === 'object') return String(port.target)
  return String(port).split(':').at(-1)?.split('/')[0] ?? ''
}

export function volumeMount (volume: string | { type?: string, source?: string, target?: string }): { source: string, target: string } {
  if (typeof volume === 'object') return { source: volume.source ?? '', target: volume.target ?? '' }
  const [source = '', target = ''] = volume.split(':')
  return { source, target }
}
