// The delivery worker on each engine, as one replica among several: it sends what another replica claimed and died
// with once that claim's lease ends (not before), and gives back what it abandons when it stops.
import t, { type Test } from 'tap'
import { Webhook } from 'standardwebhooks'
import { NotificationOutbox } from '../../../src/services/notifications/outbox.js'
import { NotificationSender } from '../../../src/services/notifications/sender.js'
import { generateSecret, Signer } from '../../../src/services/notifications/signing.js'
import { DeliveryWorker } from '../../../src/services/notifications/worker.js'
import { TaskStore } from '../../../src/services/task-store.js'
import { seedTask, taskId } from '../../helper.js'
import { startWebhookConsumer, waitUntil, type WebhookConsumer } from '../../fixtures/webhook-consumer.js'
import { postgres, sqlite, type Engine, type Stores } from '../../db/task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)
const engines: Engine[] = pg ? [sqlite, pg] : [sqlite]

const SECRET = generateSecret()
// Short, so the case waits for one to run out; long enough that a send before it would be seen as one.
const LEASE_MS = 600
const quiet = { info () {}, warn () {}, error () {} }

async function consumerFor (t: Test): Promise<WebhookConsumer> {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  return consumer
}

/** A replica's worker on the stores, sending to the consumer with NOTIFY_SECRET's signature. */
function workerOn (t: Test, { deliveries }: Stores, leaseMs = LEASE_MS): DeliveryWorker {
  const sender = new NotificationSender({ timeoutMs: 5000, allowPrivate: true, userAgent: 'test' })
  const worker = new DeliveryWorker({
    storage: deliveries, sender, signerFor: async () => new Signer([SECRET]), scheduleMs: [10], allowPrivate: true, leaseMs, log: quiet
  })
  t.teardown(async () => {
    await worker.stop(0)
    sender.close()
  })
  return worker
}

/** A task gone processing: one message to the consumer, written with the change. */
async function processingTask (stores: Stores, consumer: WebhookConsumer): Promise<void> {
  const store = new TaskStore(stores.tasks)
  const outbox = new NotificationOutbox(stores.deliveries, { globalUrl: consumer.url, signVideoLink: () => { throw new Error('no video here') } })
  store.onStatusChange((change) => outbox.messagesFor(change))
  await seedTask(store, { task_id: taskId() })
}

for (const engine of engines) {
  t.test(engine.name, async (t) => {
    t.test('what a replica claimed and died with is sent by another once the lease ends, once', async (t) => {
      const consumer = await consumerFor(t)
      const stores = await engine.openStores(t)
      await processingTask(stores, consumer)
      // The replica that died: its claim is all it did.
      const claimedAt = Date.now()
      t.equal((await stores.deliveries.claimDue(new Date(claimedAt).toISOString(), 10, LEASE_MS)).length, 1)

      const worker = workerOn(t, stores)
      await worker.start()
      const [message] = await consumer.waitFor(1, 5000)
      t.ok(message!.at >= claimedAt + LEASE_MS, `sent ${message!.at - claimedAt} ms after the claim, not before the lease's ${LEASE_MS} ms`)
      t.ok(new Webhook(SECRET).verify(message!.body, message!.headers as Record<string, string>))
      await waitUntil('recorded', async () => (await stores.deliveries.list({ state: 'delivered', limit: 5 })).length === 1)
      t.equal(consumer.received.length, 1)
    })

    t.test('an attempt abandoned at stop is given back: the next worker sends it at once, under the same webhook-id', async (t) => {
      const consumer = await consumerFor(t)
      // The first answer comes late (and is recorded then): the worker gives up on it when it stops.
      consumer.script = [{ status: 200, delayMs: 3000 }]
      const stores = await engine.openStores(t)
      await processingTask(stores, consumer)
      // A lease far longer than a fresh worker's start on a loaded machine, so "before the lease" cannot be luck.
      const longLeaseMs = 5000
      const first = workerOn(t, stores, longLeaseMs)
      await first.start()
      await waitUntil('the attempt is under way', () => first.inFlight === 1)
      await first.stop(0)
      const [row] = await stores.deliveries.list({ limit: 1 })
      t.match(row, { state: 'pending', round_attempts: 0 }, 'no attempt recorded')
      t.ok(Date.parse(row!.next_attempt_at!) <= Date.now(), 'due now, not at the lease\'s end')

      const stoppedAt = Date.now()
      const second = workerOn(t, stores, longLeaseMs)
      await second.start()
      const [resent] = await consumer.waitFor(1, 2 * longLeaseMs)
      t.ok(resent!.at - stoppedAt < longLeaseMs, `sent ${resent!.at - stoppedAt} ms after the stop, before the lease would have run out`)
      const [, abandoned] = await consumer.waitFor(2, 2 * longLeaseMs)
      t.equal(resent!.headers['webhook-id'], abandoned!.headers['webhook-id'], 'the same message')
    })
  })
}
