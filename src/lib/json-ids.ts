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
