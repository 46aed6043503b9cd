import t from 'tap'
import { ConfigError, loadConfig, tokenFingerprintName } from '../src/config.js'

t.test('defaults give a runnable configuration with nothing set', async (t) => {
  const config = loadConfig({})
  t.equal(config.PORT, 3000)
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.DATABASE_PATH, './data/s2v.db')
  t.equal(config.MINIMAX_BASE_URL, 'https://api.minimax.io')
  t.equal(config.PUBLIC_BASE_URL, 'http://127.0.0.1:3000')
  t.equal(config.MINIMAX_API_KEY, undefined)
  t.same(config.API_TOKENS, [])
  t.same(config.ADMIN_TOKENS, [])
  t.equal(config.SUBMIT_RATE_LIMIT, 60)
  t.equal(config.MINIMAX_CREATE_TIMEOUT_MS, 30_000)
  t.equal(config.TRUST_PROXY, false)
})

t.test('values are converted and tidied', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    API_TOKENS: ' a , b,,c ',
    PUBLIC_BASE_URL: 'https://s2v.example.com/base/',
    MINIMAX_BASE_URL: 'https://api.minimaxi.com/',
    TRUST_PROXY: '2',
    MINIMAX_API_KEY: '',
    LOG_LEVEL: 'debug'
  })
  t.equal(config.PORT, 8080)
  t.same(config.API_TOKENS.map(({ token }) => token), ['a', 'b', 'c'])
  t.equal(config.PUBLIC_BASE_URL, 'https://s2v.example.com/base', 'trailing slash removed')
  t.equal(config.MINIMAX_BASE_URL, 'https://api.minimaxi.com')
  t.equal(config.TRUST_PROXY, 2)
  t.equal(config.MINIMAX_API_KEY, undefined, 'an empty variable means unset')
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY, true)
  t.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8' }).TRUST_PROXY, '10.0.0.0/8')
})

t.test('a bad value stops the start with a message naming the variable', async (t) => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /PORT must be integer/],
    [{ PORT: '70000' }, /PORT must be <= 65535/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL .*info/],
    [{ PUBLIC_BASE_URL: 'not a url' }, /PUBLIC_BASE_URL/],
    [{ PUBLIC_BASE_URL: 'https://x.example/cb?x=1' }, /PUBLIC_BASE_URL/],
    [{ SUBMIT_RATE_LIMIT: '0' }, /SUBMIT_RATE_LIMIT/],
    [{ DATABASE_SYNCHRONOUS: 'OFF' }, /DATABASE_SYNCHRONOUS/]
  ]
  for (const [env, message] of bad) t.throws(() => loadConfig(env), message, JSON.stringify(env))
  t.throws(() => loadConfig({ PORT: 'x', MINIMAX_CREATE_TIMEOUT_MS: '1' }), /PORT.*MINIMAX_CREATE_TIMEOUT_MS/, 'every bad variable is named')
  t.throws(() => loadConfig({ PORT: 'x' }), ConfigError)
  const secret = (() => { try { loadConfig({ NOTIFY_SECRET: 'whsec_not base64 !!' }) } catch (err) { return (err as Error).message } return '' })()
  t.match(secret, /NOTIFY_SECRET/)
  t.notMatch(secret, /not base64/, 'a secret value is never echoed')
})

t.test('DATABASE_URL selects PostgreSQL; a bad one is refused without echoing its password', async (t) => {
  t.equal(loadConfig({}).DATABASE_URL, undefined, 'unset: SQLite')
  t.equal(loadConfig({}).DATABASE_POOL_SIZE, 10)
  const config = loadConfig({ DATABASE_URL: 'postgresql://s2v:pw@db:5432/s2v', DATABASE_POOL_SIZE: '4' })
  t.equal(config.DATABASE_URL, 'postgresql://s2v:pw@db:5432/s2v')
  t.equal(config.DATABASE_POOL_SIZE, 4)
  t.equal(loadConfig({ DATABASE_URL: 'postgres://h/db' }).DATABASE_URL, 'postgres://h/db')
  const refusal = (() => { try { loadConfig({ DATABASE_URL: 'mysql://s2v:hunter2@db/s2v' }) } catch (err) { return (err as Error).message } return '' })()
  t.match(refusal, /DATABASE_URL/)
  t.notMatch(refusal, /hunter2/, 'the URL (and its password) is never echoed')
  t.throws(() => loadConfig({ DATABASE_POOL_SIZE: '0' }), /DATABASE_POOL_SIZE/)
})

t.test('API_TOKENS and ADMIN_TOKENS entries are name:token, or a bare token named by its fingerprint', async (t) => {
  const config = loadConfig({ API_TOKENS: 'team-a:tok-a1, team-a:tok-a2 ,bare-token', ADMIN_TOKENS: 'ops:tok-ops' })
  t.same(config.API_TOKENS, [
    { name: 'team-a', token: 'tok-a1' },
    { name: 'team-a', token: 'tok-a2' },
    { name: tokenFingerprintName('bare-token'), token: 'bare-token' }
  ], 'two tokens may share a name (rotation)')
  t.same(config.ADMIN_TOKENS, [{ name: 'ops', token: 'tok-ops' }])
  t.match(tokenFingerprintName('bare-token'), /^token:[0-9a-f]{16}$/)
  t.not(tokenFingerprintName('bare-token'), tokenFingerprintName('bare-tokem'))
  t.same(loadConfig({ API_TOKENS: 'team:with:colon' }).API_TOKENS, [{ name: 'team', token: 'with:colon' }], 'the name ends at the first colon')
})

t.test('bad token entries stop the start, and never echo a token', async (t) => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ API_TOKENS: 'bad name:tok-secret-1' }, /API_TOKENS entry 1: the name/],
    [{ API_TOKENS: 'ok:tok-secret-1,-x:tok-secret-2' }, /API_TOKENS entry 2: the name/],
    [{ API_TOKENS: 'team:' }, /API_TOKENS entry 1: the token is empty/],
    [{ API_TOKENS: 'team:tok secret' }, /the token is empty or holds a space/],
    [{ ADMIN_TOKENS: 'anonymous:tok-secret-1' }, /ADMIN_TOKENS entry 1: the name "anonymous" is reserved/],
    [{ API_TOKENS: 'a:tok-secret-1,b:tok-secret-1' }, /one token is listed under two names \("a" and "b"\)/],
    [{ API_TOKENS: 'ops:tok-secret-1', ADMIN_TOKENS: 'ops:tok-secret-2' }, /"ops" also named in API_TOKENS/],
    [{ API_TOKENS: 'tok-secret-1', ADMIN_TOKENS: 'tok-secret-1' }, /also named in API_TOKENS/]
  ]
  for (const [env, message] of bad) {
    const text = (() => { try { loadConfig(env) } catch (err) { t.type(err, ConfigError); return (err as Error).message } return '' })()
    t.match(text, message, JSON.stringify(env))
    t.notMatch(text, /tok-secret|secret-\d/, 'no token in the message')
  }
})

t.test('DOWNLOAD_LINK_SECRET: too short is refused by name, without echoing it; TTLs have bounds', async (t) => {
  const short = 'short-secret'
  const err = (() => { try { loadConfig({ DOWNLOAD_LINK_SECRET: short }) } catch (error) { return error as Error } })()
  t.match(err?.message, /DOWNLOAD_LINK_SECRET/)
  t.notOk(err?.message.includes(short), 'the value is not shown')
  t.throws(() => loadConfig({ DOWNLOAD_LINK_TTL_S: '10' }), /DOWNLOAD_LINK_TTL_S/)
  t.match(loadConfig({}), { DOWNLOAD_LINK_TTL_S: 3600, DOWNLOAD_LINK_NOTIFY_TTL_S: 172800, DOWNLOAD_LINK_SECRET: undefined })
})
