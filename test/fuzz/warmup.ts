/**
 * Warm-up traffic, sent before the resource baseline is taken: one clean case of each kind the
 * fuzzer sends (tunnels to a VOD and a live path, RTSP over WebSocket, plain RTSP, the web pages,
 * unpaired legs, a refused head), so state the gateway creates once and keeps (live channels,
 * loaded modules, pools, caches) is part of the baseline rather than counted as a leak.
 */
import { header, message, serialize } from './message.js'
import type { CasePlan, Chunk, ConnPlan } from './plan.js'
import { SESSION_MARK } from './plan.js'
import { TUNNEL_TYPE } from './grammar/http.js'
import { upgradeHead } from './grammar/websocket.js'
import { Rng } from './prng.js'

function conn (chunks: Chunk[], over: Partial<ConnPlan> = {}): ConnPlan {
  return { startMs: 0, from: '127.0.8.1', chunks, close: 'destroy', holdMs: 1000, read: true, ...over }
}

const raw = (s: string): Chunk => ({ waitMs: 0, bytes: Buffer.from(s, 'latin1') })

function dialogue (base: string): string[] {
  return [
    `OPTIONS ${base} RTSP/1.0\r\nCSeq: 1\r\n\r\n`,
    `DESCRIBE ${base} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n`,
    `SETUP ${base}/trackID=1 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n`,
    `PLAY ${base} RTSP/1.0\r\nCSeq: 4\r\nSession: ${SESSION_MARK}\r\nRange: npt=0.000-\r\n\r\n`
  ]
}

function steps (base: string, encode: Chunk['encode']): Chunk[] {
  return dialogue(base).map((text, i) => ({
    waitMs: 0,
    bytes: Buffer.from(text, 'latin1'),
    encode,
    ...(i === 0 ? {} : { replies: i })
  }))
}

function tunnel (path: string, cookie: string): CasePlan {
  const get = serialize(
    message(['GET', path, 'HTTP/1.0'], [header('x-sessioncookie', cookie), header('Accept', TUNNEL_TYPE)])
  )
  const post = serialize(
    message(
      ['POST', path, 'HTTP/1.0'],
      [header('x-sessioncookie', cookie), header('Content-Type', TUNNEL_TYPE), header('Content-Length', '32767')]
    )
  )
  return {
    kind: 'warm-tunnel',
    conns: [
      conn([{ waitMs: 0, bytes: get }], { holdMs: 1500 }),
      conn([{ waitMs: 0, bytes: post }, ...steps(`rtsp://127.0.0.1${path}`, 'base64')], { startMs: 50, holdMs: 1200 })
    ]
  }
}

export function warmupCases (): CasePlan[] {
  const ws = upgradeHead(new Rng(1))
  ws.start = ['GET', '/rtsp-over-websocket', 'HTTP/1.1']
  ws.startSep = ' '
  ws.startEol = '\r\n'
  ws.blank = '\r\n'
  ws.headers = [
    header('Host', '127.0.0.1'),
    header('Upgrade', 'websocket'),
    header('Connection', 'Upgrade'),
    header('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='),
    header('Sec-WebSocket-Version', '13'),
    header('Sec-WebSocket-Protocol', 'binary')
  ]
  return [
    tunnel('/live/demo', 'warmupLiveCookie01'),
    tunnel('/demo', 'warmupVodCookie001'),
    {
      kind: 'warm-websocket',
      conns: [conn([{ waitMs: 0, bytes: serialize(ws) }, ...steps('rtsp://127.0.0.1/live/demo', 'ws')])]
    },
    { kind: 'warm-rtsp', conns: [conn(steps('rtsp://127.0.0.1/demo', 'text'))] },
    ...['/', '/metrics', '/status', '/watch/demo', '/status/summary'].map(p => ({
      kind: 'warm-web',
      conns: [conn([raw(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)], { holdMs: 500 })]
    })),
    {
      kind: 'warm-unpaired',
      conns: [
        conn([raw('GET /demo HTTP/1.0\r\nx-sessioncookie: warmupLoneGet0001\r\n\r\n')], { holdMs: 300 }),
        conn(
          [raw(`POST /demo HTTP/1.0\r\nx-sessioncookie: warmupLonePost001\r\nContent-Type: ${TUNNEL_TYPE}\r\n\r\n`)],
          { holdMs: 300 }
        )
      ]
    },
    { kind: 'warm-refused', conns: [conn([raw('BAD\r\n\r\n')], { holdMs: 200 })] }
  ]
}
