import t from 'tap'
import { assessNotifyUrl, checkNotifyUrl, guardedLookup, isPublicAddress } from '../../../src/services/notifications/url-guard.js'
import { build, submitBody } from '../../helper.js'

t.test('only public unicast addresses pass, IPv4-mapped forms judged as the IPv4 they carry', async (t) => {
  const refused = [
    '127.0.0.1', '127.8.9.10', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.1', '192.168.1.1', '169.254.169.254',
    '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '192.0.2.1',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a00:1', '2002:a00:1::1', 'not-an-ip',
    // IPv4-compatible (::/96, deprecated): loopback, private, metadata and even public IPv4s in that form
    '::7f00:1', '::127.0.0.1', '::a00:1', '::a9fe:a9fe', '::5db8:d822', '::8.8.8.8', '::2'
  ]
  for (const address of refused) t.notOk(isPublicAddress(address), `${address} is refused`)
  for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:93.184.216.34']) {
    t.ok(isPublicAddress(address), `${address} is allowed`)
  }
})

t.test('notify URLs: http(s) only, literal and resolved addresses checked, every address must be public', async (t) => {
  const guard = { allowPrivate: false, resolve: async (host: string) => ({ 'public.example': ['93.184.216.34'], 'mixed.example': ['93.184.216.34', '10.1.2.3'] } as Record<string, string[]>)[host] ?? [] }
  t.same(await assessNotifyUrl('https://public.example/hook', guard), { ok: true })
  t.match(await assessNotifyUrl('https://[::127.0.0.1]/hook', guard), { ok: false, reason: 'address' }, 'the URL parser writes it [::7f00:1]: still refused')
  t.same(await assessNotifyUrl('http://93.184.216.34:8080/hook', guard), { ok: true })
  t.match(await assessNotifyUrl('https://mixed.example/hook', guard), { ok: false, reason: 'address', message: /10\.1\.2\.3/ })
  t.match(await assessNotifyUrl('https://nowhere.example/hook', guard), { ok: false, reason: 'unresolvable' })
  t.match(await assessNotifyUrl('ftp://public.example/file', guard), { ok: false, reason: 'scheme' })
  t.match(await assessNotifyUrl('not a url', guard), { ok: false, reason: 'invalid' })
  t.match(await assessNotifyUrl('http://[::ffff:127.0.0.1]/hook', guard), { ok: false, reason: 'address' })
  t.match(await assessNotifyUrl('http://2130706433/hook', guard), { ok: false, reason: 'address' }, 'a decimal IPv4 is normalised to 127.0.0.1')
  t.match(await assessNotifyUrl('http://localhost/hook', { allowPrivate: false }), { ok: false, reason: 'address' }, 'localhost resolves to loopback (real DNS)')
  t.same(await assessNotifyUrl('http://127.0.0.1/hook', { allowPrivate: true }), { ok: true }, 'NOTIFY_ALLOW_PRIVATE=true allows private targets')
  t.match(await assessNotifyUrl('file:///etc/passwd', { allowPrivate: true }), { ok: false, reason: 'scheme' }, 'but never other schemes')
  await t.rejects(checkNotifyUrl('http://10.0.0.1/', { allowPrivate: false }), { statusCode: 400, code: 'notify_url_not_allowed' })
})

t.test('the connection-time lookup refuses a host that resolves to a private address (DNS rebinding)', async (t) => {
  const lookup = (hostname: string, all: boolean) => new Promise<{ err: NodeJS.ErrnoException | null, address: unknown }>((resolve) => {
    guardedLookup(hostname, { all }, (err, address) => resolve({ err, address }))
  })
  t.match((await lookup('localhost', false)).err, { code: 'ERR_NOTIFY_ADDRESS_NOT_ALLOWED' })
  t.match((await lookup('localhost', true)).err, { code: 'ERR_NOTIFY_ADDRESS_NOT_ALLOWED' })
})

t.test('a submit with an SSRF notify_url is refused with 400 before any task exists', async (t) => {
  // A configured provider that is never reached: the check comes first.
  const app = await build(t, { MINIMAX_API_KEY: 'key', MINIMAX_BASE_URL: 'http://127.0.0.1:9' })
  const targets = [
    'http://127.0.0.1:8080/hook', 'http://10.1.2.3/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook',
    'http://localhost:3000/hook', 'http://[::ffff:192.168.0.1]/hook', 'http://0.0.0.0/hook'
  ]
  for (const notifyUrl of targets) {
    const res = await app.inject({ method: 'POST', url: '/v1/video_generation', payload: submitBody({ notify_url: notifyUrl }) })
    t.equal(res.statusCode, 400, notifyUrl)
    t.equal(res.json().code, 'notify_url_not_allowed', notifyUrl)
  }
  const ftp = await app.inject({ method: 'POST', url: '/v1/video_generation', payload: submitBody({ notify_url: 'ftp://example.com/x' }) })
  t.equal(ftp.statusCode, 400, 'non-http(s) refused by the schema')
  t.equal((await app.inject('/v1/tasks')).json().items.length, 0, 'no task was created')
})
