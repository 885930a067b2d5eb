/**
 * HTTP/1.x request heads (RFC 9112 §2-5) as the front door sees them: request lines with odd
 * methods, targets (origin, absolute and authority form, `*`, queries carrying `sessioncookie` and
 * `token`), versions, separators and line ends; header sections with duplicate and conflicting
 * fields, huge and tiny values, obs-fold and control bytes.
 */
import type { Rng } from '../prng.js'
import { header, message, type HeaderLine, type TextMessage } from '../message.js'
import { cookie as makeCookie, headerSep, lineEnd, oddValue, streamPath, tokenSep } from './lexicon.js'
import { rtspUrl } from './url.js'

export const TUNNEL_TYPE = 'application/x-rtsp-tunnelled'

function method (rng: Rng, usual: string): string {
  return rng.weighted<() => string>([
    [80, () => usual],
    [
      6,
      () =>
        rng.pick(['GET', 'POST', 'HEAD', 'PUT', 'OPTIONS', 'DELETE', 'CONNECT', 'PATCH', 'TRACE', 'DESCRIBE', 'PRI'])
    ],
    [4, () => rng.pick([usual.toLowerCase(), usual[0] + usual.slice(1).toLowerCase(), usual + usual])],
    [2, () => rng.string('ABCDEFGHIJKLMNOPQRSTUVWXYZ_-!#', rng.int(1, 24))],
    [1, () => ''],
    [1, () => usual.slice(0, rng.int(0, usual.length - 1))]
  ])()
}

export function target (rng: Rng, path = streamPath(rng)): string {
  return rng.weighted<() => string>([
    [70, () => path],
    [6, () => `${path}?sessioncookie=${encodeURIComponent(makeCookie(rng))}`],
    [5, () => `${path}?token=${rng.pick(['', 'x', 'tg1.0.L2RlbW8.AAAA', 'eyJhbGciOiJub25lIn0.e30.', '%zz'])}`],
    [4, () => rng.pick(['http://gw.test', 'http://169.254.169.254', 'rtsp://h']) + path],
    [3, () => rtspUrl(rng)],
    [2, () => rng.pick(['*', 'gw.test:80', '', '/?', '/#', '//', '/%', '/%00'])],
    [
      2,
      () =>
        rng.pick([
          '/healthz',
          '/metrics',
          '/status',
          '/status/summary',
          '/watch',
          '/watch/demo',
          '/favicon.ico',
          '/readyz'
        ])
    ],
    [1, () => '/' + 'a'.repeat(rng.pick([100, 2000, 8300]))],
    [1, () => path + rng.bytes(rng.int(1, 8)).toString('latin1')]
  ])()
}

function version (rng: Rng): string {
  return rng.weighted([
    [55, 'HTTP/1.0'],
    [35, 'HTTP/1.1'],
    [2, 'HTTP/2.0'],
    [2, 'HTTP/1.10'],
    [2, 'http/1.1'],
    [1, 'HTTP/1'],
    [1, 'RTSP/1.0'],
    [1, 'HTTP/9.9'],
    [1, 'HTTP/1.1 ']
  ])
}

/** A request line: method, target and version with their separators and line end. */
export function requestStart (
  rng: Rng,
  usualMethod: string,
  path?: string
): Pick<TextMessage, 'start' | 'startSep' | 'startEol'> {
  const start = [method(rng, usualMethod), target(rng, path), version(rng)]
  if (rng.chance(0.03)) start.pop()
  return { start, startSep: tokenSep(rng), startEol: lineEnd(rng, 0.35) }
}

/** Give the header lines of `m` their own odd separators, line ends, duplicates and extras. */
export function roughen (m: TextMessage, rng: Rng): TextMessage {
  for (const h of m.headers) {
    if (rng.chance(0.04)) h.sep = headerSep(rng)
    h.eol = lineEnd(rng, 0.04)
    if (rng.chance(0.03)) h.value = oddValue(rng)
  }
  if (rng.chance(0.05) && m.headers.length > 0) {
    const h = rng.pick(m.headers)
    m.headers.push({ ...h, value: rng.chance(0.5) ? h.value : oddValue(rng) })
  }
  if (rng.chance(0.04) && m.headers.length > 0) {
    const h = rng.pick(m.headers)
    m.headers.splice(m.headers.indexOf(h) + 1, 0, {
      name: rng.pick([' ', '\t']) + 'folded',
      sep: '',
      value: '',
      eol: '\r\n'
    })
  }
  if (rng.chance(0.02)) {
    m.headers.push(...Array.from({ length: rng.int(60, 70) }, (_, i) => header(`X-N${i}`, String(i))))
  }
  if (rng.chance(0.02)) m.headers.push(header('X-Big', 'b'.repeat(rng.pick([4000, 8200, 9000]))))
  if (rng.chance(0.04)) m.blank = lineEnd(rng, 1)
  if (rng.chance(0.03)) m.start.unshift(rng.pick(['\r\n', '\n', '\r\n\r\n']) + m.start.shift()!)
  return m
}

export function tunnelHeaders (rng: Rng, leg: 'get' | 'post', cookie: string): HeaderLine[] {
  const hs: HeaderLine[] = []
  if (rng.chance(0.6)) {
    hs.push(
      header(
        'User-Agent',
        rng.pick(['Lavf/59.27.100', 'GStreamer/1.22.0', 'LIVE555 Streaming Media v2020.11.05', 'QuickTime/7.7', 'fuzz'])
      )
    )
  }
  if (rng.chance(0.92)) hs.push(header(rng.pick(['x-sessioncookie', 'X-SessionCookie', 'x-sessioncookie']), cookie))
  if (leg === 'get') {
    if (rng.chance(0.8)) {
      hs.push(
        header(
          'Accept',
          rng.weighted([
            [8, TUNNEL_TYPE],
            [1, `text/html, ${TUNNEL_TYPE};q=0.9`],
            [1, '*/*']
          ])
        )
      )
    }
  } else {
    if (rng.chance(0.85)) {
      hs.push(
        header(
          'Content-Type',
          rng.weighted([
            [8, TUNNEL_TYPE],
            [1, `${TUNNEL_TYPE}; charset=x`],
            [1, 'text/plain']
          ])
        )
      )
    }
    if (rng.chance(0.7)) {
      hs.push(
        header(
          'Content-Length',
          rng.weighted([
            [8, '32767'],
            [1, '0'],
            [1, '-1'],
            [1, '99999999999']
          ])
        )
      )
    }
    if (rng.chance(0.3)) hs.push(header('Expires', 'Sun, 9 Jan 1972 00:00:00 GMT'))
  }
  if (rng.chance(0.5)) hs.push(header('Pragma', 'no-cache'), header('Cache-Control', 'no-cache'))
  if (rng.chance(0.5)) hs.push(header('Host', rng.pick(['127.0.0.1', 'gw.test:80', '', 'a, b'])))
  if (rng.chance(0.1)) hs.push(header('Connection', rng.pick(['close', 'keep-alive', 'Upgrade'])))
  if (rng.chance(0.05)) hs.push(header('Authorization', rng.pick(['Basic dTpw', 'Bearer x', 'Bearer ', 'Digest'])))
  return rng.shuffle(hs)
}

/** A tunnel GET or POST head (no body). */
export function tunnelHead (rng: Rng, leg: 'get' | 'post', cookie: string, path?: string): TextMessage {
  const m = message([], tunnelHeaders(rng, leg, cookie))
  Object.assign(m, requestStart(rng, leg === 'get' ? 'GET' : 'POST', path))
  return roughen(m, rng)
}

/** An ordinary request to the web surface (or something that looks like one). */
export function webHead (rng: Rng): TextMessage {
  const hs: HeaderLine[] = [header('Host', rng.pick(['127.0.0.1', 'gw.test', '']))]
  if (rng.chance(0.4)) hs.push(header('Connection', rng.pick(['close', 'keep-alive', 'Upgrade, close'])))
  if (rng.chance(0.3)) {
    hs.push(header('Accept', rng.pick(['*/*', 'text/event-stream', 'application/json', TUNNEL_TYPE])))
  }
  if (rng.chance(0.1)) hs.push(header('Transfer-Encoding', rng.pick(['chunked', 'gzip, chunked', 'identity'])))
  if (rng.chance(0.2)) hs.push(header('Content-Length', rng.pick(['0', '5', '-1', '100000000'])))
  if (rng.chance(0.1)) hs.push(header('x-sessioncookie', makeCookie(rng)))
  if (rng.chance(0.1)) hs.push(header('Range', rng.pick(['bytes=0-', 'bytes=-1', 'bytes=5-1'])))
  const m = message([], rng.shuffle(hs))
  const path = rng.pick([
    '/',
    '/healthz',
    '/readyz',
    '/metrics',
    '/status',
    '/status/summary',
    '/status/live',
    '/status/events',
    '/status/assets/app.js',
    '/status/assets/..%2f..%2fpackage.json',
    '/watch',
    '/watch/demo',
    '/watch/live/demo',
    '/watch/../x',
    '/watch-assets/player.js',
    '/favicon.ico',
    '/hls-player.html',
    '/admin/openapi.json',
    '/nothing',
    '/rtsp-over-websocket'
  ])
  Object.assign(m, requestStart(rng, rng.weighted([[8, 'GET'], [1, 'HEAD'], [1, 'POST']]), path))
  return roughen(m, rng)
}
