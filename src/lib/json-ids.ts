// Keeps provider ids exact: MiniMax ids exceed 2^53, so a peer that writes one as a bare JSON number
// would have its digits rounded by JSON.parse. Quoting them first keeps every digit.

// A bare integer as the value of a "task_id" or "file_id" key, up to the next , } or ].
const BARE_ID = /("(?:task_id|file_id)"\s*:\s*)(-?\d+)(?=\s*[,}\]])/g

export function quoteBareIds (json: string): string {
  return json.replace(BARE_ID, '$1"$2"')
}

/** JSON.parse that keeps task_id and file_id as exact strings. */
export function parseProviderJson (json: string): unknown {
  return JSON.parse(quoteBareIds(json))
}

// A bare JSON number as the value of a "challenge" key.
const BARE_CHALLENGE = /("challenge"\s*:\s*)(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,}])/g

/**
 * A challenge MiniMax sends as a bare number must come back digit for digit, but JSON.parse rounds 20 digits. Quotes
 * it (so it parses exactly, as a string) and returns its literal text, which the answer echoes unquoted. Only a body
 * with one "challenge" key counts, so a nested one can never be taken for it.
 */
export function quoteBareChallenge (json: string): { json: string, literal: string | null } {
  if (!json.includes('"challenge"')) return { json, literal: null } // a push: no challenge to look for
  const matches = [...json.matchAll(BARE_CHALLENGE)]
  if (matches.length !== 1 || json.split('"challenge"').length !== 2) return { json, literal: null }
  return { json: json.replace(BARE_CHALLENGE, '$1"$2"'), literal: matches[0]![2]! }
}
