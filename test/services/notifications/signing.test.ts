import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { generateSecret, parseSecrets, SecretError, Signer } from '../../../src/services/notifications/signing.js'
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../../src/lib/retry-after.js'
import { parseSchedule, retryDelay } from '../../../src/services/notifications/schedule.js'

t.test('our signature verifies with the standardwebhooks package, and only for the exact body and id', async (t) => {
  const secret = generateSecret()
  t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/, '32 random bytes')
  const body = JSON.stringify({ id: 'task-1', status: 'success', prompt: 'üñí ✓' })
  const headers = new Signer([secret]).headers('msg_abc', new Date(), body)
  t.match(headers, { 'webhook-id': 'msg_abc', 'webhook-timestamp': /^\d{10}$/, 'webhook-signature': /^v1,[A-Za-z0-9+/]+=*$/ })
  const consumer = new Webhook(secret)
  t.same(consumer.verify(body, headers), JSON.parse(body))
  t.throws(() => consumer.verify(body.replace('success', 'failed'), headers), /No matching signature/, 'a changed body fails')
  t.throws(() => consumer.verify(body, { ...headers, 'webhook-id': 'msg_other' }), /No matching signature/, 'another id fails')
  t.throws(() => new Webhook(generateSecret()).verify(body, headers), /No matching signature/, 'another secret fails')
})

t.test('every configured secret signs, so a consumer holding either one verifies (rotation)', async (t) => {
  const [next, previous] = [generateSecret(), generateSecret()]
  const secrets = parseSecrets(` ${next} ,${previous},`)
  t.same(secrets, [next, previous])
  const body = '{"status":"processing"}'
  const headers = new Signer(secrets).headers('msg_rotate', new Date(), body)
  t.equal(headers['webhook-signature'].split(' ').length, 2, 'space-separated, one per secret')
  t.ok(new Webhook(next).verify(body, headers))
  t.ok(new Webhook(previous).verify(body, headers))
})

t.test('malformed secrets are refused', async (t) => {
  t.throws(() => parseSecrets('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), SecretError, 'without whsec_')
  t.throws(() => parseSecrets('whsec_c2hvcnQ='), /at least 24 bytes/, 'too short')
  t.throws(() => parseSecrets('whsec_not base64!!not base64!!not base64!!'), SecretError)
  t.throws(() => new Signer([]), SecretError)
  t.same(parseSecrets('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], 'the spec\'s example secret')
})

t.test('the retry schedule: seconds to milliseconds, ±20 % jitter, null once used up', async (t) => {
  t.same(parseSchedule('5,300, 1800,7200,18000,36000,36000'), [5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000])
  t.same(parseSchedule('0.05,0.1'), [50, 100], 'decimals for tests')
  t.throws(() => parseSchedule(''), RangeError)
  t.throws(() => parseSchedule('5,-1'), RangeError)
  t.throws(() => parseSchedule('5,x'), RangeError)

  const schedule = [1000, 10_000]
  t.equal(retryDelay(schedule, 1, () => 0), 800, 'lowest jitter')
  t.equal(retryDelay(schedule, 1, () => 1), 1200, 'highest jitter')
  t.equal(retryDelay(schedule, 2, () => 0.5), 10_000)
  t.equal(retryDelay(schedule, 3), null, 'after the last pause the delivery is dead')
  const spread = new Set(Array.from({ length: 50 }, () => retryDelay(schedule, 2)))
  t.ok(spread.size > 10, 'real jitter spreads retries')
  for (const delay of spread) t.ok(delay! >= 8000 && delay! <= 12_000)
})

t.test('Retry-After: seconds or an HTTP date, capped, ignored when unreadable', async (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  t.equal(parseRetryAfter('120', now), 120_000)
  t.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000)
  t.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('9999999', now), MAX_RETRY_AFTER_MS)
  t.equal(parseRetryAfter('soon', now), null)
  t.equal(parseRetryAfter(undefined, now), null)
})
