// Submitting a generation: write the task first, forward it to the provider (with the task's own callback URL), bind the answer.
import { randomUUID, createHash } from 'node:crypto'
import stringify from 'safe-stable-stringify'
import { retryWhileBusy } from '../db/database.js'
import { AppError, ERROR_CODES, errorBody, errors, type ErrorCode } from '../errors.js'
import { newCallbackToken } from '../lib/callback-token.js'
import { KeyedLock } from '../lib/keyed-lock.js'
import type { TaskRow } from '../db/tasks-repository.js'
import type { ProviderName, SubmitRequest, VideoProvider } from '../providers/provider.js'
import { ProviderError } from '../providers/provider-error.js'
import type { ErrorBody } from '../schemas/common.js'
import type { SubmitAnswer, SubmitBody, SubmitQueuedAnswer } from '../schemas/submit.js'
import type { SubmitQuota } from './quota.js'
import type { QueuedRequest, SubmitQueue } from './submit-queue.js'
import { submitFailure } from './submit-failure.js'
import { isTerminal } from './task-state.js'
import { IdempotencyKeyTaken } from './task-storage.js'
import { now, type Log, type TaskStore } from './task-store.js'

// MiniMax's limit is "under 20 MB" for the decoded image.
const MAX_IMAGE_BYTES = 20 * 1024 * 1024
// Metadata is for labels and correlation ids, not payloads.
const MAX_METADATA_BYTES = 4096
// The provider's answers that mean "too many creates": nothing was created, so the task may wait and go again.
// 1002 rate limit, 2045 rate growth limit, 1039 token-per-minute limit (MiniMax); HTTP 429 (either provider).
const RATE_LIMIT_CODES = new Set([1002, 1039, 2045])
// Deep enough for any label structure; checked before anything recursive (JSON.stringify, the request hash) walks it.
const MAX_METADATA_DEPTH = 10
// Once the provider has answered, what it said (a task we pay for, or its refusal) is written even if another process
// holds the database lock for a while: tried again every 100 ms for up to 30 s, the loop free in between.
const RECORD_ANSWER_RETRY = { forMs: 30_000, pauseMs: 100 }

export function isRateLimitRefusal (err: ProviderError): boolean {
  return (err.kind === 'rejected' && RATE_LIMIT_CODES.has(err.providerCode ?? 0)) || (err.kind === 'http' && err.httpStatus === 429)
}

export type SubmitResult = { statusCode: number, body: SubmitAnswer | SubmitQueuedAnswer | ErrorBody, replayed: boolean }

export type SubmitServiceOptions = {
  store: TaskStore
  /** The providers that have a key configured. */
  providers: ReadonlyMap<ProviderName, VideoProvider>
  defaultProvider: ProviderName
  publicBaseUrl: string
  log: Log
  /** Refuses a notify_url we must not call (SSRF guard); throws an AppError. */
  checkNotifyUrl?: (url: string) => Promise<void>
  /** The dispatcher that paces creates within each provider's rate limit. */
  queue: SubmitQueue
  quota: SubmitQuota
  maxQueuedPerCaller: number
}

export class SubmitService {
  readonly #options: SubmitServiceOptions
  // First requests of an Idempotency-Key still waiting for MiniMax, so concurrent duplicates share their answer.
  readonly #inFlight = new Map<string, Promise<SubmitResult>>()
  // One caller's submits are admitted one at a time (key check, quota, queue cap, the task written): a concurrent
  // duplicate then finds the key's row, and two submits never both take the quota's last place.
  readonly #admission = new KeyedLock()

  constructor (options: SubmitServiceOptions) {
    this.#options = options
    options.queue.setSender((task, queued) => this.#sendQueued(task, queued))
  }

  async submit (body: SubmitBody, caller: string, idempotencyKey?: string): Promise<SubmitResult> {
    checkRequest(body)
    const { providers, defaultProvider, checkNotifyUrl } = this.#options
    const providerName = body.provider ?? defaultProvider
    const provider = providers.get(providerName)
    if (!provider) throw errors.providerNotConfigured(providerName)
    if (body.notify_url && checkNotifyUrl) await checkNotifyUrl(body.notify_url)

    const requestHash = createHash('sha256').update(stringify(body) ?? '').digest('hex')
    const admit = async () => await this.#admit(body, caller, provider, requestHash, idempotencyKey)
    // The key written first by another replica meanwhile (this one's lock cannot see it): admitted again, it is found
    // and replayed (or answered "in progress") like any key seen before.
    const admitted = await this.#admission.run(caller, async () => await admit().catch(async (err: unknown) => {
      if (err instanceof IdempotencyKeyTaken) return await admit()
      throw err
    }))
    return await admitted.answer
  }

  /**
   * One submit's admission, under the caller's lock: an Idempotency-Key seen before is replayed; else the quota and
   * the queue's cap are checked, the task is written and either queued (answered at once) or its create started. A
   * create in flight is registered under its key before the lock is let go, so a duplicate right after shares it.
   */
  async #admit (body: SubmitBody, caller: string, provider: VideoProvider, requestHash: string, idempotencyKey: string | undefined): Promise<{ answer: Promise<SubmitResult> }> {
    const { store, queue, quota, maxQueuedPerCaller } = this.#options
    const providerName = provider.name
    const flightKey = `${caller}\n${idempotencyKey}`
    if (idempotencyKey) {
      const seen = await store.queries.idempotencyKey(caller, idempotencyKey)
      if (seen) {
        if (seen.request_hash !== requestHash) throw errors.idempotencyKeyReused()
        const pending = this.#inFlight.get(flightKey)
        if (pending) return { answer: pending.then((result) => ({ ...result, replayed: true })) }
        const stored = seen.response_status !== null && seen.response_body !== null
          ? { statusCode: seen.response_status, body: JSON.parse(seen.response_body) as SubmitAnswer | ErrorBody }
          : null
        const task = (await store.queries.bySeq(seen.task_seq))!
        // An answer that said "outcome unknown" (or none, after a restart mid-submit) is replaced by the task as it is
        // now, once a push, a poll or our deadline resolved it: the key never answers 409 or a stale 504 for ever.
        const stale = stored === null || (stored.body as ErrorBody).code === OUTCOME_UNKNOWN
        if (stale && isResolved(task)) return { answer: Promise.resolve({ ...answerOf(task), replayed: true }) }
        if (stored) return { answer: Promise.resolve({ ...stored, replayed: true }) }
        throw errors.idempotencyKeyInProgress(task.id)
      }
    }

    await quota.check(caller)
    const direct = await queue.tryDirect(providerName, caller)
    if (!direct) {
      const queued = await store.queries.queuedOfCaller(caller)
      if (queued >= maxQueuedPerCaller) throw errors.queueFull(queued, maxQueuedPerCaller)
    }
    const id = randomUUID()
    const { token, hash } = newCallbackToken(id)
    const created = now()
    const request = providerRequest(body)
    // A direct create took the provider's slot: if the task cannot be written, nothing is sent and the slot is let go.
    const task = await store.create({
      id,
      provider: providerName,
      model: body.model ?? 'S2V-01',
      status: direct ? 'submitting' : 'queued',
      prompt: body.prompt ?? null,
      prompt_optimizer: body.prompt_optimizer === undefined ? null : body.prompt_optimizer ? 1 : 0,
      image_ref: imageRef(body.subject_reference[0]!.image[0]!),
      metadata: body.metadata ? JSON.stringify(body.metadata) : null,
      callback_token_hash: hash,
      caller,
      created_at: created,
      notify_url: body.notify_url ?? null,
      next_poll_at: null,
      // A queued task keeps what it needs to be sent after a restart: the request (with the image) and its token.
      queued_request: direct ? null : JSON.stringify({ request, token } satisfies QueuedRequest),
      queued_at: direct ? null : created,
      sent_at: direct ? created : null
    }, idempotencyKey ? { scope: caller, key: idempotencyKey, requestHash } : null).catch(async (err: unknown) => {
      if (direct) await queue.release(providerName, false)
      throw err
    })

    if (!direct) {
      const answer = await this.#queuedAnswer(task)
      if (idempotencyKey) await store.saveIdempotentResponse(caller, idempotencyKey, answer.statusCode, JSON.stringify(answer.body))
      queue.wake(providerName)
      return { answer: Promise.resolve(answer) }
    }

    store.events.emit('queueDispatch', { provider: providerName, waitedMs: 0 })
    const forwarding = this.#forward(provider, task.seq, task.id, token, request).finally(async () => {
      await queue.release(providerName, (await store.queries.bySeq(task.seq))?.status !== 'queued')
    })
    if (!idempotencyKey) return { answer: forwarding }
    this.#inFlight.set(flightKey, forwarding)
    const answer = (async () => {
      try {
        const result = await forwarding
        await this.#record(() => store.saveIdempotentResponse(caller, idempotencyKey, result.statusCode, JSON.stringify(result.body)))
        return result
      } finally {
        this.#inFlight.delete(flightKey)
      }
    })()
    return { answer }
  }

  /** Writes what the provider answered, trying again while the database is locked (see RECORD_ANSWER_RETRY). */
  async #record<T> (write: () => Promise<T>): Promise<T> {
    return await retryWhileBusy(write, { ...RECORD_ANSWER_RETRY, isBusy: (err) => this.#options.store.isBusy(err) })
  }

  /** The 202 of a queued submit; task_id is our id until the provider gives its own, so MiniMax clients can poll with it. */
  async #queuedAnswer (task: TaskRow): Promise<SubmitResult> {
    const queue = await this.#options.queue.positionOf(task) ?? { position: 1, eta_s: 0 }
    return { statusCode: 202, body: { id: task.id, task_id: task.id, status: 'queued', queue, base_resp: { status_code: 0, status_msg: 'queued' } }, replayed: false }
  }

  /** The dispatcher's turn for a queued task: the same create and answer handling as a direct submit. */
  async #sendQueued (task: TaskRow, queued: QueuedRequest): Promise<void> {
    const provider = this.#options.providers.get(task.provider as ProviderName)
    if (!provider) {
      // The key was removed while the task waited: it cannot be sent; say so rather than keep it forever.
      await this.#options.store.applyUpdate(task.seq, null, { status: 'failed', providerStatus: null, error: { code: 'provider_not_configured', message: `${task.provider} is no longer configured on this service` } }, 'queue')
      return
    }
    const result = await this.#forward(provider, task.seq, task.id, queued.token, queued.request)
    this.#options.log.info({ id: task.id, provider: provider.name, status_code: result.statusCode }, 'queued task sent')
  }

  async #forward (provider: VideoProvider, seq: number, id: string, token: string, request: SubmitRequest): Promise<SubmitResult> {
    const { store, publicBaseUrl, log } = this.#options
    try {
      const { taskId, traceId } = await provider.submit(request, provider.pushesStatus ? `${publicBaseUrl}/get_callback/${token}` : null)
      log.info({ id, provider: provider.name, task_id: taskId, trace_id: traceId }, 'provider created the task')
      store.events.emit('submit', { outcome: 'created', code: null })
      const result = await this.#record(() => store.applyUpdate(seq, taskId, { status: 'processing', providerStatus: null }, 'submit', { trace_id: traceId }))
      if (!result.ok) {
        log.error({ id, task_id: taskId, reason: result.reason }, 'the provider answered with a task_id that does not fit this task')
        throw new AppError(502, 'task_id_conflict', 'the provider answered with a task_id that already belongs to another task', { id })
      }
      return { statusCode: 200, body: { task_id: taskId, id, status: result.task.status, base_resp: { status_code: 0, status_msg: 'success' } }, replayed: false }
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      if (isRateLimitRefusal(err)) {
        // Nothing was created: back to the head of the queue, the dispatcher slows down, the refusal stays in the history.
        const code = err.providerCode !== null ? String(err.providerCode) : `http_${err.httpStatus}`
        const pauseMs = await this.#options.queue.refused(provider.name, err.retryAfterMs)
        const requeued = await this.#record(() => store.moveInQueue(seq, 'requeue', {
          queuedRequest: JSON.stringify({ request, token } satisfies QueuedRequest),
          detail: { code, message: err.message, trace_id: err.traceId, retry_after_ms: err.retryAfterMs, pause_ms: Math.round(pauseMs) }
        }))
        store.events.emit('rateLimited', { provider: provider.name, code })
        log.warn({ id, provider: provider.name, code, trace_id: err.traceId, pause_ms: Math.round(pauseMs) }, 'provider rate limit: the task waits in the queue')
        if (requeued) return await this.#queuedAnswer(requeued)
      }
      const failure = submitFailure(err, publicBaseUrl)
      const error = { code: failure.outcomeUnknown ? failure.code : String(err.providerCode ?? failure.code), message: failure.message }
      log.warn({ id, provider: provider.name, err, trace_id: err.traceId, outcome_unknown: failure.outcomeUnknown }, 'provider create failed')
      store.events.emit('submit', { outcome: failure.outcomeUnknown ? 'unknown' : 'rejected', code: error.code })
      let status = 'submitting'
      if (failure.outcomeUnknown) await this.#record(() => store.recordEvent(seq, 'submit', 'unknown', { error, trace_id: err.traceId }))
      else status = (await this.#record(() => store.applyUpdate(seq, null, { status: 'failed', providerStatus: null, error }, 'submit', { trace_id: err.traceId }))).task.status
      return {
        statusCode: failure.statusCode,
        body: errorBody(failure.statusCode, failure.code, failure.message, { id, task_id: null, status, base_resp: failure.baseResp }),
        replayed: false
      }
    }
  }
}

/** The provider's create request, from the caller's body. */
function providerRequest (body: SubmitBody): SubmitRequest {
  return {
    model: body.model ?? 'S2V-01',
    prompt: body.prompt,
    prompt_optimizer: body.prompt_optimizer,
    image: body.subject_reference[0]!.image[0]!
  }
}

const OUTCOME_UNKNOWN = 'submit_outcome_unknown'

/** Whether the submit's outcome is known now: the provider gave a task_id, or the task ended. */
function isResolved (task: TaskRow): boolean {
  return task.task_id !== null || isTerminal(task.status)
}

/** A resolved task as the submit's answer: MiniMax's create answer once it has a task_id, else the failure. */
function answerOf (task: TaskRow): { statusCode: number, body: SubmitAnswer | ErrorBody } {
  if (task.task_id !== null) {
    return { statusCode: 200, body: { task_id: task.task_id, id: task.id, status: task.status, base_resp: { status_code: 0, status_msg: 'success' } } }
  }
  const taskCode = task.error_code ?? ''
  // Our own codes (submit_outcome_unknown) as they are; a provider's numeric code goes to base_resp under provider_error.
  const code: ErrorCode = taskCode in ERROR_CODES ? taskCode as ErrorCode : 'provider_error'
  const message = task.error_message ?? 'the task failed before the provider gave it an id'
  return {
    statusCode: 502,
    body: errorBody(502, code, message, {
      id: task.id,
      task_id: null,
      status: task.status,
      base_resp: { status_code: /^\d+$/.test(taskCode) ? Number(taskCode) : UNKNOWN_PROVIDER_ERROR, status_msg: message }
    })
  }
}

// MiniMax's "unknown error", for a failure that carries none of MiniMax's own codes.
const UNKNOWN_PROVIDER_ERROR = 1000

function checkRequest (body: SubmitBody): void {
  if (body.callback_url !== undefined) throw errors.callbackUrlNotAllowed()
  const image = body.subject_reference[0]!.image[0]!
  if (image.startsWith('data:')) {
    const base64Length = image.length - image.indexOf(',') - 1
    const bytes = Math.floor(base64Length * 3 / 4)
    if (bytes >= MAX_IMAGE_BYTES) throw errors.imageTooLarge(bytes, MAX_IMAGE_BYTES)
  }
  if (body.metadata) {
    checkDepth(body.metadata, MAX_METADATA_DEPTH, MAX_METADATA_BYTES)
    const bytes = Buffer.byteLength(JSON.stringify(body.metadata))
    if (bytes > MAX_METADATA_BYTES) throw errors.metadataTooLarge(bytes, MAX_METADATA_BYTES)
  }
}

/**
 * Refuses a value nested deeper than maxDepth, without recursion (a 30 MB body can nest a million levels, which would
 * overflow the stack of any recursive walk: a 500). Every value takes at least a byte of JSON, so more than maxBytes
 * values are too large, whatever they are: the walk never visits more.
 */
function checkDepth (value: unknown, maxDepth: number, maxBytes: number): void {
  const stack: Array<[unknown, number]> = [[value, 1]]
  let visited = 0
  while (stack.length > 0) {
    if (++visited > maxBytes) throw errors.metadataTooLarge(maxBytes, maxBytes, true)
    const [node, depth] = stack.pop()!
    if (node === null || typeof node !== 'object') continue
    if (depth > maxDepth) throw errors.metadataTooDeep(maxDepth)
    const children = Object.values(node)
    if (children.length > maxBytes) throw errors.metadataTooLarge(maxBytes, maxBytes, true)
    for (const child of children) stack.push([child, depth + 1])
  }
}

/** What we keep of the image: its URL, or for a data URL only its type, size and digest (never the data). */
function imageRef (image: string): string {
  if (!image.startsWith('data:')) return image
  const comma = image.indexOf(',')
  const digest = createHash('sha256').update(image.slice(comma + 1)).digest('hex')
  return `${image.slice(0, comma)},sha256:${digest} (${image.length - comma - 1} base64 chars)`
}
