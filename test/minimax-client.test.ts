// MiniMax's official JavaScript client (minimax-mcp-js, pinned) pointed at this service, unchanged:
// query → retrieve → download against the real service and the fake MiniMax, and its error classes.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { VideoAPI } from 'minimax-mcp-js/build/api/video.js'
import { MinimaxAuthError, MinimaxRequestError } from 'minimax-mcp-js/build/exceptions/index.js'
import { MiniMaxAPI } from 'minimax-mcp-js/build/utils/api.js'
import { fakeVideoBytes } from './fixtures/fake-minimax.js'
import { postJson, rejectionOf, startStack, submitBody, tempDir, type Stack } from './helper.js'

const TOKENS = { API_TOKENS: 'token-a,token-b', RECONCILE_TICK_MS: '20' }

const client = (stack: Stack, apiKey: string, resourceMode: 'url' | 'local' = 'url') =>
  new VideoAPI(new MiniMaxAPI({ apiKey, apiHost: stack.url, resourceMode }))

async function finishedTask (stack: Stack): Promise<{ id: string, task_id: string }> {
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody(), { authorization: 'Bearer token-a' })
  const deadline = Date.now() + 5000
  while ((await stack.app.taskStore.queries.byId(res.body.id))?.status !== 'success') {
    if (Date.now() > deadline) throw new Error('the task did not finish')
    await sleep(20)
  }
  return res.body
}

t.test('URL mode: queryVideoGeneration gets a link of this service, which downloads the video without a bearer header', async (t) => {
  const stack = await startStack(t, { env: TOKENS })
  const { task_id: taskId } = await finishedTask(stack)
  const result = await client(stack, 'token-a').queryVideoGeneration({ taskId })
  t.match(result, { status: 'Success', task_id: taskId, video_url: `${stack.url}/v1/files/download/` })
  const video = await fetch(result.video_url!)
  t.equal(video.status, 200)
  const fileId = (await stack.app.taskStore.queries.byTaskId(taskId))!.file_id!
  t.same(Buffer.from(await video.arrayBuffer()), fakeVideoBytes(fileId), 'the provider\'s bytes')
  const calls = stack.fake.requests.filter((r) => !r.path.startsWith('/download/')).map((r) => r.path)
  t.notOk(calls.includes('/v1/query/video_generation'), 'the client\'s query was answered from our database')
})

t.test('local mode: the client itself follows the link and saves the video', async (t) => {
  const stack = await startStack(t, { env: TOKENS })
  const { task_id: taskId } = await finishedTask(stack)
  // The client writes under MINIMAX_MCP_BASE_PATH (read when it saves the file).
  const saved = process.env.MINIMAX_MCP_BASE_PATH
  process.env.MINIMAX_MCP_BASE_PATH = tempDir(t)
  t.teardown(() => { if (saved === undefined) delete process.env.MINIMAX_MCP_BASE_PATH; else process.env.MINIMAX_MCP_BASE_PATH = saved })
  const result = await client(stack, 'token-a', 'local').queryVideoGeneration({ taskId })
  t.match(result, { status: 'Success', task_id: taskId, video_path: process.env.MINIMAX_MCP_BASE_PATH })
  t.same(readFileSync(result.video_path!), fakeVideoBytes((await stack.app.taskStore.queries.byTaskId(taskId))!.file_id!))
})

t.test('a missing or wrong key surfaces as the client\'s authentication error', async (t) => {
  const stack = await startStack(t, { env: TOKENS })
  const { task_id: taskId } = await finishedTask(stack)
  for (const key of ['wrong-key', '']) {
    const err = await rejectionOf(client(stack, key).queryVideoGeneration({ taskId }), MinimaxAuthError)
    t.match(err.message, /API Error: a valid "Authorization: Bearer <token>" header is required, Please check your API key/, JSON.stringify(key))
  }
})

t.test('another caller\'s task, and an unknown one, are not found', async (t) => {
  const stack = await startStack(t, { env: TOKENS })
  const { task_id: taskId } = await finishedTask(stack)
  const other = await rejectionOf(client(stack, 'token-b').queryVideoGeneration({ taskId }), MinimaxRequestError)
  t.notOk(other instanceof MinimaxAuthError)
  t.match(other.message, `API Error: invalid params: task ${taskId} not found`)
  const unknown = await rejectionOf(client(stack, 'token-a').queryVideoGeneration({ taskId: '123456789012345678' }), MinimaxRequestError)
  t.match(unknown.message, 'API Error: invalid params: task 123456789012345678 not found')
})

t.test('a task still running answers its status and no link', async (t) => {
  const stack = await startStack(t, { env: TOKENS, behaviour: { pushes: 'none' } })
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody(), { authorization: 'Bearer token-a' })
  t.same(await client(stack, 'token-a').queryVideoGeneration({ taskId: res.body.task_id }), { status: 'Processing' })
})
