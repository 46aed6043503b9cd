// Keeps provider ids exact: MiniMax ids exceed 2^53, so a peer that writes one as a bare JSON number
// would have its digits rounded by JSON.parse. Quoting them first keeps every digit.

// A bare integer as the value of a "task_id" or "file_id" key, up to the next , } or ].
const BARE_ID = /("(?:task_id|file_id)"\s*:\s*)(-?\d+)(?=\s*[,}\]])/g

export function quoteBareIds (json: string): string {
  // Most bodies name no id (a challenge, a submit): the scan for a key is cheaper than the pattern's search.
  return json.includes('_id"') ? json.replace(BARE_ID, '$1"$2"') : json
}

/** JSON.parse that keeps task_id and file_id as exact strings. */
export function parseProviderJson (json: string): unknown {
  return JSON.parse(quoteBareIds(json))
}

const CHALLENGE_KEY = '"challenge"'
// A bare JSON number as the value of a "challenge" key.
const BARE_CHALLENGE = /("challenge"\s*:\s*)(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,}])/

/**
 * A challenge MiniMax sends as a bare number must come back digit for digit, but JSON.parse rounds 20 digits. Quotes
 * it (so it parses exactly, as a string) and returns its literal text, which the answer echoes unquoted. Only a body
 * with one "challenge" key counts, so a nested one can never be taken for it.
 */
export function quoteBareChallenge (json: string): { json: string, literal: string | null } {
  const key = json.indexOf(CHALLENGE_KEY)
  // A push (no challenge to look for), or two keys (not guessed which one is meant).
  if (key < 0 || json.includes(CHALLENGE_KEY, key + CHALLENGE_KEY.length)) return { json, literal: null }
  const match = BARE_CHALLENGE.exec(json)
  if (!match) return { json, literal: null } // a string challenge: nothing to quote
  return { json: json.replace(BARE_CHALLENGE, '$1"$2"'), literal: match[2]! }
}
