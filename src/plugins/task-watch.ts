// The in-process notifier that long-polls and event streams wait on; released first when the app closes.
import fp from 'fastify-plugin'
import { TaskWatch } from '../services/task-watch.js'

declare module 'fastify' {
  interface FastifyInstance {
    taskWatch: TaskWatch
  }
}

export default fp(async (app) => {
  const watch = new TaskWatch(app.taskStore, { perCaller: app.config.MAX_WAITERS_PER_CALLER, total: app.config.MAX_WAITERS })
  app.decorate('taskWatch', watch)
  // Before the server stops accepting and waits for open requests: waiting clients get their answer now,
  // event streams end, so a 60 s long-poll or an endless stream never holds the shutdown.
  app.addHook('preClose', async () => { watch.close() })
}, { name: 'task-watch', dependencies: ['database'] })
