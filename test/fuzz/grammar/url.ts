/**
 * Request URLs (RFC 3986 / RFC 2326 §3.2): scheme "://" [userinfo "@"] host [":" port] path
 * [? query] [# fragment], each part drawn from its own grammar, including the forms real parsers
 * disagree on: IPv6 brackets (closed or not), reg-names, ports with stray characters, more than
 * one port, userinfo, the rtsps/rtspt/rtsph schemes, dot segments, double slashes and
 * percent-encoding.
 */
import type { Rng } from '../prng.js'
import { streamPath } from './lexicon.js'

function scheme (rng: Rng): string {
  return rng.weighted([
    [70, 'rtsp://'],
    [3, 'RTSP://'],
    [2, 'rtsps://'],
    [3, 'rtspt://'],
    [2, 'rtsph://'],
    [2, 'rtspu://'],
    [2, 'http://'],
    [1, 'rtsp:/'],
    [1, 'rtsp:'],
    [1, '//'],
    [1, 'rtsp:///']
  ])
}

function userinfo (rng: Rng): string {
  if (!rng.chance(0.08)) return ''
  return rng.pick(['u@', 'u:p@', '@', 'a@b@', 'user:pa%40ss@', ':@', 'u:p:q@'])
}

function ipv6 (rng: Rng): string {
  const body = rng.pick([
    '::1',
    'fe80::1%25lo',
    '::ffff:127.0.0.1',
    '2001:db8::5',
    '::',
    'v1.x',
    '1:2:3:4:5:6:7:8:9',
    'zz::1'
  ])
  return rng.weighted([[8, `[${body}]`], [1, `[${body}`], [1, `${body}]`], [1, body], [1, `[[${body}]]`]])
}

function host (rng: Rng): string {
  return rng.weighted<() => string>([
    [30, () => rng.pick(['127.0.0.1', 'gw.test', 'localhost', 'h'])],
    [6, () => rng.pick(['169.254.169.254', '10.0.0.1', '0', '0.0.0.0', '999.1.1.1', '127.1', '2130706433'])],
    [6, () => ipv6(rng)],
    [3, () => ''],
    [2, () => rng.pick(['H%41ST', 'xn--bcher-kva.example', 'GW.TEST', 'a_b', 'h.', '.h', 'a..b'])],
    [1, () => 'h'.repeat(rng.int(64, 400))]
  ])()
}

/** Digits, sometimes with one stray character among them, sometimes none. */
function portDigits (rng: Rng): string {
  const digits = rng.weighted<() => string>([
    [6, () => rng.pick(['554', '80', '8554', '0', '65535', '65536'])],
    [3, () => rng.string('0123456789', rng.int(1, 6))],
    [1, () => '']
  ])()
  if (digits.length === 0 || !rng.chance(0.15)) return digits
  const at = rng.int(0, digits.length)
  return digits.slice(0, at) + rng.pick(['r', ' ', '-', '+', '.', ':', 'x', '%']) + digits.slice(at)
}

function port (rng: Rng): string {
  if (rng.chance(0.5)) return ''
  let p = ':' + portDigits(rng)
  if (rng.chance(0.1)) p += ':' + portDigits(rng)
  return p
}

function path (rng: Rng): string {
  let p = streamPath(rng)
  if (rng.chance(0.08)) p = p.replace(/^\/?/, rng.pick(['/./', '/../', '//', '/%2e%2e/', '/%2F', '/a/../']))
  if (rng.chance(0.04)) p = p.replace(/[a-z]/, c => `%${c.charCodeAt(0).toString(16)}`)
  if (rng.chance(0.03)) p += rng.pick(['%00', '%', '%zz', '%ff', '\\..\\'])
  if (rng.chance(0.08)) {
    p += rng.pick(['?token=x', '?a=1&b', '?', '#frag', '?sessioncookie=abc', '?token=tg1.1.L2RlbW8.AAAA'])
  }
  return p
}

export function rtspUrl (rng: Rng): string {
  return rng.weighted<() => string>([
    [96, () => scheme(rng) + userinfo(rng) + host(rng) + port(rng) + path(rng)],
    [2, () => '*'],
    [1, () => path(rng)],
    [1, () => rng.pick(['trackID=1', 'stream=0', ''])]
  ])()
}
