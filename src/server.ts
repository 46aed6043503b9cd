// Process entry: read the configuration, build the app, listen, and close gracefully on SIGTERM/SIGINT.
import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { loggerOptions } from './logger.js'
import { buildMetricsServer } from './metrics-server.js'

if (existsSync('.env')) process.loadEnvFile('.env')

let config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(1)
}

const logger = pino({
  ...loggerOptions(config.LOG_LEVEL),
  // Pretty lines for a person at a terminal during development; JSON everywhere else.
  ...(process.stdout.isTTY && process.env.NODE_ENV !== 'production' && canResolve('pino-pretty') ? { transport: { target: 'pino-pretty' } } : {})
})

const app = await buildApp(config, { logger })
// METRICS_PORT moves /metrics to a server of its own (buildApp then leaves it out of the app).
const metricsServer = config.METRICS_PORT === undefined ? null : await buildMetricsServer(app.metrics, app.log)

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS, logger }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an unexpected error')
  else app.log.info({ signal }, 'closing: finishing in-flight requests')
  // The scrape server first: a scrape reads the database, which app.close() closes.
  await metricsServer?.close()
  await app.close()
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
  if (metricsServer) await metricsServer.listen({ port: config.METRICS_PORT, host: config.HOST })
} catch (err) {
  // A busy port is an operator's mistake, not a crash: say which port and what to do, without a stack trace.
  if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
  const port = (err as { port?: number }).port ?? config.PORT
  console.error(`port ${port} on ${config.HOST} is already in use (another s2v-callback or \`npm start\`?): stop it, or choose another with ${port === config.PORT ? 'PORT' : 'METRICS_PORT'}=<port>`)
  await metricsServer?.close()
  await app.close()
  process.exit(1)
}

function canResolve (name: string): boolean {
  try {
    import.meta.resolve(name)
    return true
  } catch {
    return false
  }
}
