// One connection of its own that LISTENs on a channel and hands over each payload; made again after it is lost.
import type pg from 'pg'

// After a lost connection, the first new one is tried this soon (a server restart or a failover takes seconds)...
export const LISTEN_RETRY_FIRST_MS = 250
// ...then twice as long after each failure, up to this: a database down for long is not hammered, and a change is
// heard again at most this long after the database is back.
export const LISTEN_RETRY_MAX_MS = 30_000

export type ListenOptions = {
  /** A new, unconnected client (its own connection: never one of the query pool's, which a LISTEN would pin). */
  client: () => pg.Client
  channel: string
  onPayload: (payload: string) => void
  /** The connection was lost, or a new one failed: it is tried again after the back-off. */
  onError: (err: unknown) => void
}

/** Listens once connected (the first connection must succeed: the promise rejects otherwise); resolves to the closer. */
export async function listen ({ client: newClient, channel, onPayload, onError }: ListenOptions): Promise<() => Promise<void>> {
  let closed = false
  let current: pg.Client | null = null
  let connecting: Promise<void> | null = null
  let retry: NodeJS.Timeout | null = null
  let delay = LISTEN_RETRY_FIRST_MS

  const connect = async (): Promise<void> => {
    const client = newClient()
    let live = false // LISTEN is in place: from then on a loss is reported and mended here
    let lost = false
    const onLost = (err: unknown, ended = false) => {
      if (lost) return
      lost = true
      if (!ended) client.end().catch(() => {})
      if (!live) return // connect() fails with it itself
      if (current === client) current = null
      if (closed) return
      onError(err)
      schedule()
    }
    // Registered before connect: a client that fails without an error listener throws out of the process.
    client.on('error', onLost)
    client.on('end', () => onLost(new Error('the listening connection ended'), true))
    client.on('notification', (message) => { if (message.channel === channel && message.payload !== undefined) onPayload(message.payload) })
    try {
      await client.connect()
      // The channel is an identifier: quoted, so its case and characters are kept.
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
      if (lost) throw new Error('the listening connection was lost as it started')
    } catch (err) {
      lost = true
      client.end().catch(() => {})
      throw err
    }
    live = true
    if (closed) return await client.end()
    current = client
    delay = LISTEN_RETRY_FIRST_MS
  }

  const schedule = () => {
    if (closed || retry !== null) return
    retry = setTimeout(() => {
      retry = null
      connecting = connect().catch((err: unknown) => {
        if (closed) return
        onError(err)
        schedule()
      }).finally(() => { connecting = null })
    }, delay)
    // A pending reconnection never keeps the process alive; the closer clears it anyway.
    retry.unref()
    delay = Math.min(delay * 2, LISTEN_RETRY_MAX_MS)
  }

  await connect()
  return async () => {
    closed = true
    if (retry !== null) clearTimeout(retry)
    retry = null
    await connecting // a new connection under way ends itself once it sees `closed`
    const client = current
    current = null
    await client?.end()
  }
}
