import t from 'tap'
import { decide, isProvisional, isTerminal, normaliseStatus, queueMove, TASK_STATUSES, type QueueMove, type ReportedStatus, type TaskState, type TaskStatus } from '../../src/services/task-state.js'

const state = (status: TaskStatus, extra: Partial<TaskState> = {}): TaskState =>
  ({ status, provider_status: null, file_id: null, error: null, ...extra })

t.test('normaliseStatus accepts both MiniMax vocabularies in any case', async (t) => {
  const cases: Array<[string, ReportedStatus | null]> = [
    ['processing', 'processing'], ['Processing', 'processing'], ['PROCESSING', 'processing'], ['Queueing', 'processing'],
    ['Preparing', 'processing'], ['queued', 'processing'], ['success', 'success'], ['Success', 'success'], [' SUCCESS ', 'success'],
    ['failed', 'failed'], ['Fail', 'failed'], ['fail', 'failed'], ['done?', null], ['', null],
    // words that name Object.prototype's members (found by the fuzz test: they once resolved to functions)
    ['constructor', null], ['__proto__', null], ['toString', null], ['hasOwnProperty', null]
  ]
  for (const [word, expected] of cases) t.equal(normaliseStatus(word), expected, `"${word}"`)
})

// A failure the provider reported, and one this service decided itself when it stopped waiting.
const providerFailure = { code: '1027', message: 'sensitive content' }
const ownFailure = { code: 'timeout', message: 'the task did not finish in time', provisional: true }

t.test('every (current, reported) pair has the documented outcome', async (t) => {
  // The whole table: rows are the current state, columns what the provider reports (push or poll).
  const rows: Record<string, TaskState> = {
    queued: state('queued'),
    submitting: state('submitting'),
    processing: state('processing'),
    success: state('success', { file_id: 'f1' }),
    'failed (provider)': state('failed', { error: providerFailure }),
    'failed (ours, provisional)': state('failed', { error: ownFailure })
  }
  const table: Record<string, Record<ReportedStatus, [TaskStatus, string]>> = {
    // A queued task was never sent, so no provider can report on it; if one did, it is taken like a submitting one.
    queued: { processing: ['processing', 'applied'], success: ['success', 'applied'], failed: ['failed', 'applied'] },
    submitting: { processing: ['processing', 'applied'], success: ['success', 'applied'], failed: ['failed', 'applied'] },
    processing: { processing: ['processing', 'duplicate'], success: ['success', 'applied'], failed: ['failed', 'applied'] },
    success: { processing: ['success', 'out_of_order'], success: ['success', 'duplicate'], failed: ['success', 'conflict'] },
    'failed (provider)': { processing: ['failed', 'out_of_order'], success: ['failed', 'conflict'], failed: ['failed', 'duplicate'] },
    'failed (ours, provisional)': { processing: ['failed', 'out_of_order'], success: ['success', 'applied'], failed: ['failed', 'applied'] }
  }
  t.same(new Set(Object.values(rows).map((row) => row.status)), new Set(TASK_STATUSES), 'every status has a row')
  for (const [name, current] of Object.entries(rows)) {
    for (const reported of ['processing', 'success', 'failed'] as const) {
      const decision = decide(current, { status: reported, providerStatus: reported })
      const [next, outcome] = table[name]![reported]
      t.equal(decision.next.status, next, `${name} + ${reported} → ${next}`)
      t.equal(decision.outcome, outcome, `${name} + ${reported} is ${outcome}`)
    }
  }
})

t.test('the provider\'s verdict replaces a failure this service decided itself, and is final', async (t) => {
  const ours = state('failed', { error: ownFailure })
  t.ok(isProvisional(ours))
  t.notOk(isProvisional(state('failed', { error: providerFailure })), 'a provider\'s failure is final')
  t.notOk(isProvisional(state('processing', { error: ownFailure })), 'only a failed task can be provisionally failed')

  const late = decide(ours, { status: 'success', providerStatus: 'Success', fileId: '205258526306433' })
  t.equal(late.outcome, 'applied')
  t.same(late.next, { status: 'success', provider_status: 'Success', file_id: '205258526306433', error: null }, 'success, with its file_id and no error')
  t.equal(decide(late.next, { status: 'failed', providerStatus: 'Fail', error: providerFailure }).outcome, 'conflict', 'and that success is final')

  const refused = decide(ours, { status: 'failed', providerStatus: 'Fail', error: providerFailure })
  t.equal(refused.outcome, 'applied')
  t.same(refused.next.error, providerFailure, 'the provider\'s own code replaces ours')
  t.notOk(isProvisional(refused.next), 'the provider\'s failure is not provisional')
  t.equal(decide(refused.next, { status: 'success', providerStatus: 'Success', fileId: 'f' }).outcome, 'conflict', 'nothing overrules it')

  const unexplained = decide(ours, { status: 'failed', providerStatus: 'failed' })
  t.same(unexplained.next.error, { code: 'provider_failed', message: 'the provider reported the task as failed' }, 'a bare "failed" from the provider still ends the provisional state')

  const running = decide(ours, { status: 'processing', providerStatus: 'Processing' })
  t.equal(running.outcome, 'out_of_order')
  t.equal(running.next, ours, '"still processing" keeps our failure until a verdict comes')

  const ownAgain = decide(ours, { status: 'failed', providerStatus: null, error: { code: 'submit_outcome_unknown', message: 'x', provisional: true } })
  t.equal(ownAgain.outcome, 'duplicate', 'a give-up of ours never overrules another')
  t.same(ownAgain.next.error, ownFailure)

  const ownFromProcessing = decide(state('processing'), { status: 'failed', providerStatus: null, error: ownFailure })
  t.equal(ownFromProcessing.outcome, 'applied')
  t.ok(isProvisional(ownFromProcessing.next), 'giving up keeps the provisional mark')
})

t.test('terminal states never change, whatever arrives after them', async (t) => {
  const done = state('success', { file_id: 'f1', provider_status: 'Success' })
  for (const update of [
    { status: 'processing' as const, providerStatus: 'Processing' },
    { status: 'failed' as const, providerStatus: 'Fail', error: { code: '1027', message: 'x' } },
    { status: 'success' as const, providerStatus: 'success', fileId: 'other' }
  ]) {
    const decision = decide(done, update)
    t.same(decision.next, done, `after ${update.providerStatus}`)
  }
  t.ok(isTerminal('success') && isTerminal('failed') && !isTerminal('processing') && !isTerminal('submitting'))
})

t.test('an applied update carries file_id on success and the error on failure', async (t) => {
  const success = decide(state('processing'), { status: 'success', providerStatus: 'Success', fileId: '205258526306433' })
  t.same(success.next, { status: 'success', provider_status: 'Success', file_id: '205258526306433', error: null })

  const failed = decide(state('processing'), { status: 'failed', providerStatus: 'Fail', error: { code: '1027', message: 'sensitive' } })
  t.same(failed.next.error, { code: '1027', message: 'sensitive' })

  const unexplained = decide(state('processing'), { status: 'failed', providerStatus: 'failed' })
  t.equal(unexplained.next.error?.code, 'provider_failed', 'a failure without a reason still gets an error')
})

t.test('a duplicate while processing keeps the finer provider word; a duplicate success may fill a missing file_id', async (t) => {
  const queued = decide(state('processing', { provider_status: 'Queueing' }), { status: 'processing', providerStatus: 'Processing' })
  t.equal(queued.outcome, 'duplicate')
  t.equal(queued.next.provider_status, 'Processing')

  const late = decide(state('success'), { status: 'success', providerStatus: 'success', fileId: 'f9' })
  t.equal(late.outcome, 'duplicate')
  t.equal(late.next.file_id, 'f9')
  t.equal(decide(state('success', { file_id: 'f1' }), { status: 'success', providerStatus: 'success', fileId: 'f9' }).next.file_id, 'f1', 'a file_id is never replaced')
})

t.test('an unknown status changes nothing', async (t) => {
  const current = state('processing')
  const decision = decide(current, { status: null, providerStatus: 'Exploded' })
  t.equal(decision.outcome, 'unrecognised')
  t.equal(decision.next, current)
})

t.test('the submit queue\'s moves: every (current status, move) pair, with and without a provider task_id', async (t) => {
  const table: Record<TaskStatus, Record<QueueMove, TaskStatus | null>> = {
    queued: { dispatch: 'submitting', requeue: null, cancel: 'failed', expire: 'failed' },
    submitting: { dispatch: null, requeue: 'queued', cancel: null, expire: null },
    processing: { dispatch: null, requeue: null, cancel: null, expire: null },
    success: { dispatch: null, requeue: null, cancel: null, expire: null },
    failed: { dispatch: null, requeue: null, cancel: null, expire: null }
  }
  for (const current of TASK_STATUSES) {
    for (const move of ['dispatch', 'requeue', 'cancel', 'expire'] as const) {
      t.equal(queueMove(current, move, false), table[current][move], `${current} + ${move} → ${table[current][move]}`)
    }
  }
  t.equal(queueMove('submitting', 'requeue', true), null, 'a task the provider already named is never sent again')
  t.equal(queueMove('queued', 'dispatch', true), 'submitting')
  t.notOk(isTerminal('queued'))
})
