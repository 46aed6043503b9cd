// Where the CLI's URL and token come from (flag, S2V_*, the owner-only config file, the default), and durations.
import t from 'tap'
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helper.js'
import { formatBytes, formatElapsed, parseDurationMs } from '../../src/cli/duration.js'
import { CliError } from '../../src/cli/exit-codes.js'
import { configPath, DEFAULT_URL, readStoredConfig, resolveSettings, writeStoredConfig } from '../../src/cli/settings.js'

t.test('precedence: flag, then environment, then the file, then the default', async t => {
  const env = { XDG_CONFIG_HOME: tempDir(t) }
  t.match(await resolveSettings({}, env), { url: DEFAULT_URL, urlSource: 'default', token: undefined, tokenSource: undefined })
  await writeStoredConfig(env, { url: 'http://file.example:1/', token: 'file-token' })
  t.match(await resolveSettings({}, env), { url: 'http://file.example:1', urlSource: 'config', token: 'file-token', tokenSource: 'config' })
  const withEnv = { ...env, S2V_URL: 'http://env.example:2', S2V_TOKEN: 'env-token' }
  t.match(await resolveSettings({}, withEnv), { url: 'http://env.example:2', urlSource: 'env', token: 'env-token', tokenSource: 'env' })
  t.match(await resolveSettings({ url: 'https://flag.example', token: 'flag-token' }, withEnv), { url: 'https://flag.example', urlSource: 'flag', token: 'flag-token', tokenSource: 'flag' })
  t.match(await resolveSettings({}, { ...env, S2V_URL: '', S2V_TOKEN: '' }), { urlSource: 'config', tokenSource: 'config' }, 'empty means unset')
  await t.rejects(resolveSettings({ url: 'not a url' }, env), CliError)
  await t.rejects(resolveSettings({ url: 'file:///etc/passwd' }, env), /must be http\(s\)/)
})

t.test('the file is written owner-only, even over a looser one, and a broken file is a clear error', async t => {
  const env = { XDG_CONFIG_HOME: tempDir(t) }
  mkdirSync(join(env.XDG_CONFIG_HOME, 's2v'), { recursive: true })
  writeFileSync(configPath(env), '{}')
  chmodSync(configPath(env), 0o644)
  await writeStoredConfig(env, { token: 'secret' })
  t.equal(statSync(configPath(env)).mode & 0o777, 0o600)
  t.same(await readStoredConfig(env), { token: 'secret' })
  writeFileSync(configPath(env), '{ broken')
  await t.rejects(readStoredConfig(env), /is not valid JSON/)
  t.same(await readStoredConfig({ XDG_CONFIG_HOME: tempDir(t) }), {}, 'no file: nothing stored')
  t.equal(configPath({ HOME: '/home/x' }), '/home/x/.config/s2v/config.json')
})

t.test('durations and sizes', async t => {
  t.equal(parseDurationMs('90'), 90_000)
  t.equal(parseDurationMs('90s'), 90_000)
  t.equal(parseDurationMs('1.5m'), 90_000)
  t.equal(parseDurationMs('2h'), 7_200_000)
  t.equal(parseDurationMs('250ms'), 250)
  for (const bad of ['', 'soon', '-1', '0', '5 minutes']) t.throws(() => parseDurationMs(bad), CliError, bad)
  t.equal(formatElapsed(59_999), '59s')
  t.equal(formatElapsed(61_000), '1m01s')
  t.equal(formatElapsed(3_720_000), '1h02m')
  t.equal(formatBytes(1023), '1023 B')
  t.equal(formatBytes(2810), '2.7 KiB')
  t.equal(formatBytes(5 * 1024 * 1024), '5.0 MiB')
})
