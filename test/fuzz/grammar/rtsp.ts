/**
 * RTSP/1.0 requests (RFC 2326 §6, §12) and interleaved `$` frames (§10.12): every method, URLs
 * from the URL grammar, CSeq / Session / Transport / Content-Length variants (missing, repeated,
 * conflicting, at the numeric edges), control bytes in values, bodies that match their length or
 * do not, and `$` frames of every size (none, tiny, the protocol maximum, declared longer than
 * sent). A dialogue is the order a player uses: OPTIONS, DESCRIBE, SETUP, PLAY, then keepalives
 * and TEARDOWN, each later step waiting for the replies before it.
 */
import type { Rng } from '../prng.js'
import { header, message, type HeaderLine, type TextMessage } from '../message.js'
import { SESSION_MARK } from '../plan.js'
import { edgeNumber, lineEnd, oddValue, tokenSep } from './lexicon.js'
import { rtspUrl } from './url.js'
import { roughen } from './http.js'

export const METHODS = [
  'OPTIONS',
  'DESCRIBE',
  'SETUP',
  'PLAY',
  'PAUSE',
  'TEARDOWN',
  'GET_PARAMETER',
  'SET_PARAMETER',
  'ANNOUNCE',
  'RECORD',
  'REDIRECT',
  'PLAY_NOTIFY'
]

function rtspMethod (rng: Rng, usual?: string): string {
  return rng.weighted<() => string>([
    [usual === undefined ? 0 : 70, () => usual!],
    [25, () => rng.pick(METHODS)],
    [2, () => rng.pick(METHODS).toLowerCase()],
    [2, () => rng.string('ABCDEFGHIJKLMNOPQRSTUVWXYZ_', rng.int(1, 24))],
    [1, () => rng.pick(['GET', 'POST', 'HEAD'])]
  ])()
}

function transport (rng: Rng): string {
  const one = (): string =>
    rng.weighted<() => string>([
      [60, () => `RTP/AVP/TCP;unicast;interleaved=${rng.pick(['0-1', '2-3', '4-5'])}`],
      [
        6,
        () =>
          `RTP/AVP/TCP;unicast;interleaved=${rng.pick([
            '255-256', '1-0', '0', '-1-0', '0-1-2', 'a-b', '65535-65536', ''
          ])}`
      ],
      [6, () => `RTP/AVP;unicast;client_port=${rng.int(1024, 65000)}-${rng.int(1024, 65000)}`],
      [4, () => `RTP/AVP/TCP;unicast;interleaved=0-1;destination=${rng.pick(['169.254.169.254', '127.0.0.1', '::1'])}`],
      [3, () => 'RTP/AVP;multicast;ttl=127;port=5000-5001'],
      [3, () => rng.pick(['RTP/AVP/UDP', 'RTP/SAVP/TCP;interleaved=0-1', 'RTP/AVP/TCP', 'raw', ''])],
      [2, () => oddValue(rng)]
    ])()
  return rng.chance(0.1) ? Array.from({ length: rng.int(2, 4) }, one).join(',') : one()
}

function session (rng: Rng): string {
  return rng.weighted([
    [70, SESSION_MARK],
    [6, `${SESSION_MARK};timeout=60`],
    [6, '12345678'],
    [4, ''],
    [4, 'x'.repeat(300)],
    [4, `${SESSION_MARK},${SESSION_MARK}`]
  ])
}

/** The headers a method usually carries, then odd extras. */
function requestHeaders (rng: Rng, method: string, cseq: number, body: Buffer): HeaderLine[] {
  const hs: HeaderLine[] = []
  hs.push(header('CSeq', rng.chance(0.9) ? String(cseq) : edgeNumber(rng)))
  if (rng.chance(0.05)) hs.push(header('CSeq', String(cseq + rng.int(0, 2))))
  if (rng.chance(0.5)) {
    hs.push(header('User-Agent', rng.pick(['Lavf59.27.100', 'fuzz/1.0', 'LIVE555 Streaming Media v2020.11.05'])))
  }
  if (method === 'DESCRIBE' && rng.chance(0.8)) {
    hs.push(header('Accept', rng.pick(['application/sdp', '*/*', 'text/parameters'])))
  }
  if (method === 'SETUP' && rng.chance(0.95)) hs.push(header('Transport', transport(rng)))
  if (['PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'RECORD'].includes(method) && rng.chance(0.85)) {
    hs.push(header('Session', session(rng)))
  }
  if (method === 'SETUP' && rng.chance(0.3)) hs.push(header('Session', session(rng)))
  if (method === 'PLAY' && rng.chance(0.6)) {
    hs.push(
      header(
        'Range',
        rng.pick(['npt=0.000-', 'npt=now-', 'npt=5-1', 'clock=19961108T142300Z-', 'smpte=0:10:00-', 'npt=-'])
      )
    )
  }
  if (rng.chance(0.05)) hs.push(header('Require', rng.pick(['implicit-play', 'play.basic', 'x'])))
  if (rng.chance(0.04)) {
    hs.push(header('Authorization', rng.pick(['Basic dTpw', 'Digest username="u", uri="rtsp://h/demo"'])))
  }
  if (rng.chance(0.03)) hs.push(header(rng.pick(['Content-Base', 'Location', 'RTP-Info', 'Public']), rtspUrl(rng)))
  if (body.length > 0 || rng.chance(0.05)) {
    const real = String(body.length)
    hs.push(
      header(
        'Content-Length',
        rng.weighted([
          [80, real],
          [5, edgeNumber(rng)],
          [5, String(body.length + rng.int(1, 64))],
          [5, String(Math.max(0, body.length - rng.int(1, 8)))],
          [5, ` ${real}`]
        ])
      )
    )
    if (rng.chance(0.04)) hs.push(header('Content-Length', String(rng.int(0, 100))))
    if (rng.chance(0.6)) hs.push(header('Content-Type', rng.pick(['text/parameters', 'application/sdp', 'text/plain'])))
  }
  return hs
}

function body (rng: Rng, method: string): Buffer {
  if (method === 'SET_PARAMETER' || method === 'GET_PARAMETER') {
    return rng.chance(0.6)
      ? Buffer.from(rng.pick(['packets_received\r\n', 'jitter\r\n', 'position: 1\r\n']), 'latin1')
      : Buffer.alloc(0)
  }
  if (method === 'ANNOUNCE') {
    return Buffer.from(
      'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=control:rtsp://10.0.0.1/x\r\n',
      'latin1'
    )
  }
  return rng.chance(0.03) ? rng.bytes(rng.small(1, 3000)) : Buffer.alloc(0)
}

/** One request; `url` defaults to the URL grammar (relative controls for SETUP sometimes). */
export function rtspRequest (rng: Rng, usual: string | undefined, cseq: number, url?: string): TextMessage {
  const method = rtspMethod(rng, usual)
  const b = body(rng, method)
  const m = message(
    [
      method,
      url ?? rtspUrl(rng),
      rng.weighted([
        [92, 'RTSP/1.0'],
        [3, 'RTSP/2.0'],
        [2, 'HTTP/1.0'],
        [1, 'RTSP/1.1'],
        [1, 'rtsp/1.0'],
        [1, 'RTSP/1.0 ']
      ])
    ],
    requestHeaders(rng, method, cseq, b),
    b
  )
  m.startSep = tokenSep(rng)
  m.startEol = lineEnd(rng, 0.05)
  return roughen(m, rng)
}

/**
 * The request URLs of one player: a base URL (from the URL grammar, so its authority is anything the
 * grammar makes) and the track URLs under it.
 */
export function dialogue (rng: Rng): TextMessage[] {
  const base = rng.chance(0.85)
    ? `rtsp://${rng.pick(['127.0.0.1', 'gw.test', 'h:554'])}${rng.pick(['/demo', '/live/demo'])}`
    : rtspUrl(rng)
  const steps: Array<[string, string]> = [['OPTIONS', base], ['DESCRIBE', base], ['SETUP', `${base}/trackID=1`]]
  if (rng.chance(0.4)) steps.push(['SETUP', `${base}/trackID=2`])
  steps.push(['PLAY', base])
  for (let n = rng.small(0, 3); n > 0; n--) {
    steps.push([rng.pick(['GET_PARAMETER', 'OPTIONS', 'PAUSE', 'PLAY', 'SET_PARAMETER']), base])
  }
  if (rng.chance(0.6)) steps.push(['TEARDOWN', base])
  if (rng.chance(0.3)) steps.splice(0, rng.int(1, 2))
  return steps.map(([method, url], i) => rtspRequest(rng, method, i + 1, url))
}

/** A `$` frame: channel, length as declared, payload (possibly shorter than declared). */
export function interleaved (rng: Rng): Buffer {
  const size = rng.weighted<() => number>([
    [40, () => rng.int(8, 120)],
    [20, () => 0],
    [15, () => rng.int(1, 7)],
    [10, () => rng.int(200, 2100)],
    [8, () => rng.int(2100, 20000)],
    [7, () => 65535]
  ])()
  const channel = rng.weighted<() => number>([[60, () => rng.int(0, 3)], [20, () => rng.int(4, 255)], [20, () => 1]])()
  const head = Buffer.from([0x24, channel, size >> 8, size & 0xff])
  const sent = rng.chance(0.9) ? size : rng.int(0, size)
  const payload = rng.chance(0.5) ? rtcpLike(rng, sent) : rng.bytes(sent)
  return Buffer.concat([head, payload])
}

/** An RTCP receiver report shape (what real players send upstream), padded or cut to `n` bytes. */
function rtcpLike (rng: Rng, n: number): Buffer {
  const rr = Buffer.from([0x81, 0xc9, 0x00, 0x07, ...rng.bytes(28)])
  if (n <= rr.length) return rr.subarray(0, n)
  return Buffer.concat([rr, rng.bytes(n - rr.length)])
}
