// Shared by the provider client tests: a bare HTTP server to script odd answers, and catching a ProviderError.
import { createServer, type Server } from 'node:http'
import { ProviderError } from '../../src/providers/provider-error.js'
import { rejectionOf } from '../helper.js'

export async function rawServer (t: { teardown: (fn: () => void) => void }, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

/** The ProviderError a promise rejects with (anything else fails the test). */
export const failure = (promise: Promise<unknown>): Promise<ProviderError> => rejectionOf(promise, ProviderError)
