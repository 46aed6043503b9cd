// The exit codes of the s2v command: a contract scripts rely on (README "Command-line client" lists them).
export const EXIT = Object.freeze({
  ok: 0,
  /** A bug or an unexpected local failure (e.g. the output file cannot be written). */
  internal: 1,
  /** Bad arguments, unknown command, unreadable or unsuitable image file. */
  usage: 2,
  /** The task ended `failed` (or was cancelled). */
  taskFailed: 3,
  /** The service could not be reached (connection refused, DNS, network timeout). */
  unreachable: 4,
  /** The service refused our credentials (401/403). */
  auth: 5,
  /** `--timeout` elapsed before the task finished. */
  timeout: 6,
  /** The service answered with an error (404 not_found, 409, 429, 5xx, ...). */
  apiError: 7,
  /** Ctrl-C while waiting: the task goes on; `s2v wait <id>` resumes (128 + SIGINT, as shells do). */
  interrupted: 130
})
export type ExitCode = typeof EXIT[keyof typeof EXIT]

/** An error that ends the command with a given exit code; `details` goes into the --json error document. */
export class CliError extends Error {
  readonly exitCode: ExitCode
  readonly details: Record<string, unknown>
  constructor (exitCode: ExitCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
    this.details = details
  }
}

export const usageError = (message: string) => new CliError(EXIT.usage, message, { code: 'usage' })
