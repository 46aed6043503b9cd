// `npx tsx bench/group-commit.ts [tasks]`: what a durable push costs the task module alone (no HTTP, no logs), by group
// size: token check, state machine, the group's transaction and its fsync, on a filled database at synchronous=FULL.
// Prints CPU µs per push for groups of 1, 2, 5 and 10 pushes, and splits it into a cost per group and one per push.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { SqliteTaskStorage } from '../src/db/sqlite-task-storage.js'
import { TasksRepository } from '../src/db/tasks-repository.js'
import { WalSync } from '../src/db/wal-sync.js'
import { CallbackService, type StatusPush } from '../src/services/callback.js'
import { TaskStore } from '../src/services/task-store.js'
import { fillTasks, seedPushTasks, type PushTarget } from './fill.js'

const tasks = Number(process.argv[2] ?? 100_000)
// The push scenario's shape: 10,000 seeded tasks, each pushed processing (duplicate), success, Success (duplicate).
const PUSH_TASKS = 10_000
const CYCLE = ['processing', 'success', 'Success'] as const
const GROUP_SIZES = [1, 2, 5, 10]
// Pushes per group size: a few seconds each; the first WARM_UP ones let V8 optimise and are not counted.
const PUSHES = 40_000
const WARM_UP = 10_000

const dir = mkdtempSync(join(tmpdir(), 's2v-group-commit-'))
process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
const path = join(dir, 'tasks.db')
fillTasks(path, tasks)
const targets = seedPushTasks(path, PUSH_TASKS, 1)
const db = openDatabase(path, { synchronous: 'FULL' })
migrate(db)
const walSync = new WalSync(db)
const store = new TaskStore(new SqliteTaskStorage(new TasksRepository(db), walSync))
store.setPollScheduler(() => null)
const silent = { info () {}, warn () {}, error () {}, debug () {} }
const callbacks = new CallbackService(store, silent)

let sent = 0
function nextPush (): { target: PushTarget, push: StatusPush } {
  const target = targets[sent % targets.length]!
  const status = CYCLE[Math.floor(sent / targets.length) % CYCLE.length]!
  sent += 1
  return { target, push: status === 'processing' ? { task_id: target.taskId, status } : { task_id: target.taskId, status, file_id: target.taskId.slice(3), base_resp: { status_code: 0 } } }
}

/** `size` pushes at once, as the route takes them: token checked, then applied; they commit as one group. */
async function group (size: number): Promise<void> {
  await Promise.all(Array.from({ length: size }, async () => {
    const { target, push } = nextPush()
    const task = await callbacks.authenticate(target.token)
    if (!task) throw new Error('a seeded token did not authenticate')
    await callbacks.push(task, push, target.token)
  }))
}

const perPush: number[] = []
for (const size of GROUP_SIZES) {
  for (let done = 0; done < WARM_UP; done += size) await group(size)
  const before = process.cpuUsage()
  for (let done = 0; done < PUSHES; done += size) await group(size)
  const { user, system } = process.cpuUsage(before)
  perPush.push((user + system) / PUSHES)
  console.log(`groups of ${String(size).padStart(2)}: ${perPush.at(-1)!.toFixed(1)} CPU µs per push (system ${(system / PUSHES).toFixed(1)}), fsync on the ${walSync.onLoop ? 'loop' : 'thread pool'}`)
}
// cost(g) = perPushCost + perGroupCost / g, fitted through the smallest and the largest group.
const [small, large] = [GROUP_SIZES[0]!, GROUP_SIZES.at(-1)!]
const perGroupCost = (perPush[0]! - perPush.at(-1)!) / (1 / small - 1 / large)
console.log(`about ${perGroupCost.toFixed(0)} µs per group (transaction, commit, fsync) + ${(perPush.at(-1)! - perGroupCost / large).toFixed(0)} µs per push, on ${tasks.toLocaleString('en')} tasks`)
await walSync.close()
db.close()
