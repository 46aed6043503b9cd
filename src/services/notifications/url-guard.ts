// SSRF guard for notify URLs: http(s) only, and by default only to public unicast addresses.
import { lookup as lookupCallback, type LookupAddress, type LookupOptions } from 'node:dns'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { AppError } from '../../errors.js'

export type UrlGuardOptions = {
  /** NOTIFY_ALLOW_PRIVATE: loopback, private and link-local targets are allowed (tests, private networks). */
  allowPrivate: boolean
  /** Resolves a host name to all its addresses; dns.promises.lookup by default (tests inject their own). */
  resolve?: (hostname: string) => Promise<string[]>
}

export type UrlVerdict =
  | { ok: true }
  | { ok: false, reason: 'invalid' | 'scheme' | 'address' | 'unresolvable', message: string }

export const NOTIFY_URL_NOT_ALLOWED = 'notify_url_not_allowed'

/**
 * True for an address a notification may go to: public unicast only. Loopback, private, carrier-grade NAT,
 * link-local, unique-local, unspecified, multicast, broadcast, reserved, documentation and the IPv6 forms that
 * embed an IPv4 address (mapped, NAT64, 6to4, Teredo) are all refused; an IPv4-mapped IPv6 address is judged
 * as the IPv4 address it carries.
 */
export function isPublicAddress (address: string): boolean {
  if (!ipaddr.isValid(address)) return false
  let parsed = ipaddr.parse(canonical(address))
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6
    // ::/96, the deprecated IPv4-compatible form (::7f00:1 is 127.0.0.1 to some stacks): ipaddr.js calls it unicast.
    if (v6.parts.slice(0, 6).every((part) => part === 0)) return false
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address()
  }
  return parsed.range() === 'unicast'
}

/**
 * An IPv6 address with a dotted tail as the WHATWG URL parser (and so every client) writes it: ipaddr.js reads
 * `::8.8.8.8` as the mapped ::ffff:8.8.8.8, where it is the IPv4-compatible ::808:808.
 */
function canonical (address: string): string {
  if (!address.includes(':') || !address.includes('.')) return address
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1)
  } catch {
    return address
  }
}

const defaultResolve = async (hostname: string): Promise<string[]> =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address)

/** Whether a notification may be sent to this URL now (its host is resolved: DNS answers can change). */
export async function assessNotifyUrl (url: string, options: UrlGuardOptions): Promise<UrlVerdict> {
  return await assessUrl(url, { ...options, name: 'notify_url', httpsOnly: false, setting: 'NOTIFY_ALLOW_PRIVATE' })
}

/**
 * The guard itself, for any URL we are about to fetch on someone's behalf: a valid http(s) URL (https only when
 * `httpsOnly`, unless private targets are allowed), whose host resolves to public addresses only.
 */
export async function assessUrl (url: string, options: UrlGuardOptions & { name: string, httpsOnly: boolean, setting: string }): Promise<UrlVerdict> {
  const { name } = options
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { ok: false, reason: 'invalid', message: `${name} is not a valid URL` }
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, reason: 'scheme', message: `${name} must be an http or https URL` }
  }
  if (options.allowPrivate) return { ok: true }
  if (options.httpsOnly && parsed.protocol !== 'https:') return { ok: false, reason: 'scheme', message: `${name} must be an https URL (${options.setting}=true allows http)` }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  let addresses: string[]
  if (isIP(host)) addresses = [host]
  else {
    try {
      addresses = await (options.resolve ?? defaultResolve)(host)
    } catch (err) {
      return { ok: false, reason: 'unresolvable', message: `the host of ${name} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})` }
    }
  }
  if (addresses.length === 0) return { ok: false, reason: 'unresolvable', message: `the host of ${name} does not resolve` }
  const refused = addresses.find((address) => !isPublicAddress(address))
  if (refused !== undefined) {
    return { ok: false, reason: 'address', message: `${name} resolves to ${refused}, a loopback, private or otherwise non-public address (${options.setting}=true allows it)` }
  }
  return { ok: true }
}

/** The submit-time check: throws a 400 notify_url_not_allowed AppError for a URL we would not send to. */
export async function checkNotifyUrl (url: string, options: UrlGuardOptions): Promise<void> {
  const verdict = await assessNotifyUrl(url, options)
  if (!verdict.ok) throw new AppError(400, NOTIFY_URL_NOT_ALLOWED, verdict.message)
}

export class AddressNotAllowedError extends Error {
  override name = 'AddressNotAllowedError'
  readonly code = 'ERR_NOTIFY_ADDRESS_NOT_ALLOWED'
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A dns.lookup for http.request that refuses non-public answers, so a host cannot pass the check and then
 * resolve to a private address when the connection is made (DNS rebinding).
 */
export function guardedLookup (hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookupCallback(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, [])
    const refused = addresses.find((entry) => !isPublicAddress(entry.address))
    if (refused) return callback(new AddressNotAllowedError(`${hostname} resolved to the non-public address ${refused.address}`), [])
    if (options.all) return callback(null, addresses)
    const first = addresses[0]
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), [])
    callback(null, first.address, first.family)
  })
}
