// What a change to a task sets off, all in one place and in the order it happens: the task module commits the change,
// the effects below follow. A newcomer reads this file to know what a push, a poll or a submit leads to.
import fp from 'fastify-plugin'

export default fp(async (app) => {
  const { taskStore: tasks, reconciler, taskWatch, notifications } = app

  // Inside the transaction of every status change: these commit or roll back with it.
  // 1. The next poll, by the reconciler's policy, whenever the provider told us something.
  tasks.setPollScheduler((task, now) => reconciler.nextPollAfterNews(task, now))
  // 2. The notification outbox's rows (signed webhooks to the task's notify_url and NOTIFY_URL), which the task
  //    storage writes with the change.
  let enqueued = false
  tasks.onStatusChange((change) => {
    const messages = notifications.outbox.messagesFor(change)
    if (messages.length > 0) enqueued = true
    return messages
  })

  // After the commit, from the task module's events:
  const unsubscribe = [
    // 3. The delivery worker wakes, only when a row was written (most changes notify nobody).
    tasks.events.subscribe({
      status: () => {
        if (!enqueued) return
        enqueued = false
        notifications.worker.wake()
      }
    }),
    // 4. Long-polls and event streams waiting on the task answer (after the write's own answer); so do they when
    //    another replica committed the change (remoteStatus: heard from the database, read again here), and only they:
    //    the deliveries, nudges and metrics of that change are the other replica's.
    tasks.events.subscribe({ status: taskWatch.changed, remoteStatus: taskWatch.changed }),
    // 5. A push refused for its token names a task: it is polled soon (at most once per interval), in case it is real.
    tasks.events.subscribe({
      refusedPush: ({ taskSeq }) => {
        reconciler.nudge(taskSeq).catch((err: unknown) => { app.log.warn({ err, task_seq: taskSeq }, 'could not move a task named by a refused push to the front of the polls') })
      }
    }),
    // 6. Metrics count pushes, submits, provider calls, queue dispatches and write times.
    tasks.events.subscribe(app.metricsListeners)
  ]
  app.addHook('onClose', async () => { for (const off of unsubscribe) off() })
}, { name: 'task-effects', dependencies: ['database', 'reconciler', 'task-watch', 'notifications', 'metrics'] })
