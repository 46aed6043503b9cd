import t from 'tap'
import { build, seedTask, submitBody, taskId } from '../helper.js'

t.test('a body-less POST accepts an empty body sent as application/json; a route that needs a body still refuses it', async (t) => {
  const app = await build(t, { MINIMAX_API_KEY: 'k', MINIMAX_BASE_URL: 'http://127.0.0.1:9' })
  const { id, token } = await seedTask(app.taskStore, { task_id: taskId() })
  const tid = (await app.taskStore.queries.byId(id))!.task_id!
  await app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status: 'failed' } })
  // A failed task is answered without calling the provider.
  for (const headers of [{ 'content-type': 'application/json' }, { 'content-type': 'application/json; charset=utf-8', 'content-length': '0' }]) {
    const res = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/refresh`, headers, payload: '' })
    t.equal(res.statusCode, 200, JSON.stringify(headers))
    t.equal(res.json().status, 'failed')
  }
  const empty = await app.inject({ method: 'POST', url: '/v1/video_generation', headers: { 'content-type': 'application/json' }, payload: '' })
  t.equal(empty.statusCode, 400)
  t.equal(empty.json().code, 'invalid_request')
  const malformed = await app.inject({ method: 'POST', url: `/v1/tasks/${id}/refresh`, headers: { 'content-type': 'application/json' }, payload: '{"a":' })
  t.equal(malformed.statusCode, 400, 'a body that is there must still be JSON')
  const poisoned = await app.inject({ method: 'POST', url: '/v1/video_generation', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is refused as before')
  const fine = await app.inject({ method: 'POST', url: '/v1/video_generation', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(submitBody({ prompt: 123 })) })
  t.equal(fine.statusCode, 400, 'bodies are parsed and validated without coercion')
})

t.test('the other body-less POSTs (secret rotation, a delivery retry) take an empty JSON body too', async (t) => {
  const app = await build(t, { API_TOKENS: 'alice:alice-token', ADMIN_TOKENS: 'ops:ops-token' })
  const headers = { authorization: 'Bearer alice-token', 'content-type': 'application/json' }
  const rotate = await app.inject({ method: 'POST', url: '/v1/notifications/secret/rotate', headers, payload: '' })
  t.equal(rotate.statusCode, 200, 'rotation with an empty JSON body')
  const retry = await app.inject({ method: 'POST', url: '/v1/deliveries/msg_nope/retry', headers, payload: '' })
  t.equal(retry.statusCode, 404, 'the retry got as far as looking the delivery up (not a 400 for the empty body)')
  t.equal(retry.json().code, 'not_found')
})
