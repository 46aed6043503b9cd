// Signed download links: bound to one task, one purpose and an expiry; anything altered is refused.
import t from 'tap'
import { createHmac, randomUUID } from 'node:crypto'
import { DownloadLinks, type LinkPurpose } from '../../src/services/download-links.js'

const SECRET = 'k'.repeat(40)
const links = new DownloadLinks(SECRET, 'https://s2v.example.com')

function parts (url: string) {
  const parsed = new URL(url)
  return { path: parsed.pathname, expires: Number(parsed.searchParams.get('expires')), signature: parsed.searchParams.get('signature')! }
}

t.test('a signed link names the task, carries its expiry and checks out until then', async (t) => {
  const id = randomUUID()
  const now = Date.parse('2026-12-01T10:00:00.000Z')
  const link = links.sign(id, 'video', 3600, now)
  const { path, expires, signature } = parts(link.url)
  t.equal(path, `/v1/files/download/${id}`)
  t.equal(expires, now / 1000 + 3600)
  t.equal(link.expires_at, '2026-12-01T11:00:00.000Z')
  t.match(signature, /^[A-Za-z0-9_-]{43}$/)
  t.equal(links.check(id, 'video', expires, signature, now), 'ok')
  t.equal(links.check(id, 'video', expires, signature, expires * 1000 - 1), 'ok', 'a millisecond before the expiry')
  t.equal(links.check(id, 'video', expires, signature, expires * 1000), 'expired', 'at the expiry')
})

t.test('a link is the HMAC-SHA256 of its task, purpose and expiry under the secret, in exactly these bytes', async (t) => {
  const id = randomUUID()
  const now = Date.parse('2026-12-01T10:00:00.250Z')
  const expires = Math.ceil(now / 1000) + 60
  // Computed here the long way (the raw secret, URLSearchParams), so a shortcut in sign() cannot change a byte unseen.
  const signature = createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(`s2v-download-link/1\nvideo\n${id}\n${expires}`).digest('base64url')
  const query = new URLSearchParams({ expires: String(expires), signature })
  t.same(links.sign(id, 'video', 60, now), { url: `https://s2v.example.com/v1/files/download/${id}?${query}`, expires_at: '2026-12-01T10:01:01.000Z' })
})

t.test('altered, for another task, another purpose or another key: invalid', async (t) => {
  const id = randomUUID()
  const now = Date.now()
  const { expires, signature } = parts(links.sign(id, 'video', 60, now).url)
  t.equal(links.check(id, 'video', expires + 3600, signature, now), 'invalid', 'a later expiry')
  t.equal(links.check(randomUUID(), 'video', expires, signature, now), 'invalid', 'another task')
  t.equal(links.check(id, 'thumbnail' as LinkPurpose, expires, signature, now), 'invalid', 'another purpose')
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1)
  t.equal(links.check(id, 'video', expires, flipped, now), 'invalid', 'one character changed')
  t.equal(links.check(id, 'video', expires, signature.slice(1), now), 'invalid', 'truncated')
  t.equal(new DownloadLinks('z'.repeat(40), 'https://s2v.example.com').check(id, 'video', expires, signature, now), 'invalid', 'another key')
  // An expired link that was also altered reads as altered: the signature is checked first.
  t.equal(links.check(id, 'video', expires - 120, signature, now), 'invalid')
})
