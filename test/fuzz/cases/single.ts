/**
 * One-connection cases: a bare HTTP head (tunnel leg, web or upgrade) with whatever follows it;
 * plain RTSP on the port (a dialogue with `$` frames between requests); RTSP over WebSocket; the
 * web surface (pipelined requests); and raw bytes, random or a byte-mutated head.
 */
import type { Rng } from '../prng.js'
import { serialize, type StreamUnit, type TextMessage } from '../message.js'
import { conn, split, type CasePlan, type Chunk } from '../plan.js'
import { cookie as makeCookie } from '../grammar/lexicon.js'
import { tunnelHead, webHead } from '../grammar/http.js'
import { dialogue, interleaved, rtspRequest } from '../grammar/rtsp.js'
import { framesFor, upgradeHead } from '../grammar/websocket.js'
import { mutateBytes, mutateMessage } from '../mutate.js'
import { streamChunks } from './stream-chunks.js'
import { postUnits } from './tunnel.js'

function anyHead (rng: Rng): TextMessage {
  return rng.weighted<() => TextMessage>([
    [40, () => tunnelHead(rng, rng.chance(0.6) ? 'get' : 'post', makeCookie(rng))],
    [30, () => webHead(rng)],
    [15, () => upgradeHead(rng)],
    [15, () => mutateMessage(rng.chance(0.5) ? webHead(rng) : tunnelHead(rng, 'get', makeCookie(rng)), rng)]
  ])()
}

export function headCase (rng: Rng): CasePlan {
  const head = serialize(anyHead(rng))
  const after = rng.weighted<() => Buffer>([
    [60, () => Buffer.alloc(0)],
    [20, () => rng.bytes(rng.small(1, 2000))],
    [10, () => serialize(webHead(rng))],
    [10, () => Buffer.from(Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n').toString('base64'))]
  ])()
  const chunks = split(head, rng)
  if (after.length > 0) chunks.push({ waitMs: rng.chance(0.5) ? 0 : rng.int(1, 300), bytes: after })
  return { kind: 'head', conns: [conn(rng, chunks)] }
}

export function rtspCase (rng: Rng): CasePlan {
  const units: StreamUnit[] = rng.chance(0.8)
    ? dialogue(rng)
    : Array.from({ length: rng.int(1, 4) }, (_, i) => rtspRequest(rng, undefined, i + 1))
  for (let n = rng.small(0, 4); n > 0; n--) units.splice(rng.int(1, units.length), 0, interleaved(rng))
  const chunks = streamChunks(rng, units, 'text')
  return { kind: 'rtsp', conns: [conn(rng, chunks, { holdMs: rng.int(200, 3000) })] }
}

export function webSocketCase (rng: Rng): CasePlan {
  const chunks: Chunk[] = split(serialize(upgradeHead(rng)), rng)
  const units = postUnits(rng)
  if (rng.chance(0.6)) {
    // The dialogue, one binary frame per message (each waits for the replies before it, session filled in).
    chunks.push(...streamChunks(rng, units, 'ws'))
  } else {
    // The same stream cut into fragments, with pings, odd opcodes and close frames among them.
    const bytes = Buffer.concat(units.map(u => Buffer.isBuffer(u) ? u : serialize(u)))
    for (const f of framesFor(rng, bytes)) chunks.push({ waitMs: rng.chance(0.8) ? 0 : rng.int(1, 200), bytes: f })
  }
  return { kind: 'websocket', conns: [conn(rng, chunks, { holdMs: rng.int(200, 3000) })] }
}

export function webCase (rng: Rng): CasePlan {
  const requests = Array.from({ length: rng.small(1, 4) }, () => serialize(webHead(rng)))
  const chunks = split(Buffer.concat(requests), rng)
  return { kind: 'web', conns: [conn(rng, chunks, { holdMs: rng.int(50, 1500) })] }
}

export function bytesCase (rng: Rng): CasePlan {
  const bytes = rng.weighted<() => Buffer>([
    [40, () => mutateBytes(serialize(anyHead(rng)), rng, 6)],
    [25, () => rng.bytes(rng.small(1, 4096))],
    [15, () => mutateBytes(serialize(rtspRequest(rng, undefined, 1)), rng, 4)],
    [
      10,
      () =>
        Buffer.concat([
          Buffer.from(
            rng.pick(['GET ', 'POST ', 'OPTIONS ', 'G', '\x16\x03\x01', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', '$']),
            'latin1'
          ),
          rng.bytes(rng.small(0, 512))
        ])
    ],
    [10, () => interleaved(rng)]
  ])()
  return { kind: 'bytes', conns: [conn(rng, split(bytes, rng))] }
}
