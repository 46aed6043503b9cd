// Which optional routes this service has (the submit queue's cancel and quota), read once from its OpenAPI document,
// so the pages never probe a route that is not there.
import { apiBase } from './api.js'

let paths: Promise<Set<string>> | undefined

export async function hasRoute (method: string, path: string): Promise<boolean> {
  paths ??= fetch(`${apiBase}/openapi.json`, { headers: { accept: 'application/json' } })
    .then(async (response) => response.ok ? await response.json() as { paths?: Record<string, Record<string, unknown>> } : {})
    .then((doc) => new Set(Object.entries(doc.paths ?? {}).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))))
    .catch(() => new Set<string>())
  return (await paths).has(`${method.toUpperCase()} ${path}`)
}
