/**
 * Generated tunnels: a GET and POST(s) sharing one cookie, the POST body the RTSP of a player's
 * dialogue in base64 (per-message padding, sometimes chunked, sometimes after `Expect:
 * 100-continue`), in the shapes clients and attackers use: POST before GET, re-POSTs,
 * overlapping POSTs, a second GET for a live cookie, `$` RTCP upstream on the GET, an HTTP
 * request on the GET's own connection, legs that never find their partner.
 */
import type { Rng } from '../prng.js'
import { header, serialize, setHeader, type StreamUnit, type TextMessage } from '../message.js'
import { conn, split, type CasePlan, type Chunk, type ConnPlan } from '../plan.js'
import { cookie as makeCookie } from '../grammar/lexicon.js'
import { tunnelHead } from '../grammar/http.js'
import { dialogue, interleaved } from '../grammar/rtsp.js'
import { mutateMessage, mutateStream } from '../mutate.js'
import { streamChunks } from './stream-chunks.js'

/** The POST's body stream: a dialogue, with mutations and `$` frames mixed in. */
export function postUnits (rng: Rng): StreamUnit[] {
  let units: StreamUnit[] = dialogue(rng)
  if (rng.chance(0.3)) {
    units = units.map(u => rng.chance(0.3) ? mutateMessage(u as TextMessage, rng, units as TextMessage[]) : u)
  }
  if (rng.chance(0.2)) units = mutateStream(units, rng)
  for (let n = rng.small(0, 4); n > 0; n--) units.splice(rng.int(1, units.length), 0, interleaved(rng))
  return units
}

function postHeadFor (rng: Rng, c: string, path: string, chunked: boolean): TextMessage {
  const head = tunnelHead(rng, 'post', c, path)
  if (chunked) {
    setHeader(
      head,
      'Transfer-Encoding',
      rng.weighted([
        [8, 'chunked'],
        [1, 'Chunked'],
        [1, 'gzip, chunked']
      ])
    )
  }
  if (rng.chance(0.12)) head.headers.push(header('Expect', rng.pick(['100-continue', '100-Continue', 'nothing'])))
  return head
}

/** A POST leg's connection: head, then the body chunks (chunked framing ends with 0 CRLF CRLF). */
export function postConn (
  rng: Rng,
  c: string,
  path: string,
  units: StreamUnit[],
  over: Partial<ConnPlan> = {}
): ConnPlan {
  const chunked = rng.chance(0.1)
  const head = serialize(postHeadFor(rng, c, path, chunked))
  const body = streamChunks(rng, units, chunked ? 'chunked-base64' : 'base64')
  // Body bytes with no pause before them leave with the head, as live555 and GStreamer send them.
  const all: Chunk[] = [...split(head, rng), ...body]
  if (chunked && rng.chance(0.5)) {
    all.push({
      waitMs: 0,
      bytes: Buffer.from(rng.pick(['0\r\n\r\n', '0;x=1\r\n\r\n', 'zz\r\n', '0\r\nTrailer: x\r\n\r\n']), 'latin1')
    })
  }
  return conn(rng, all, { holdMs: rng.int(300, 2500), ...over })
}

export function getConn (rng: Rng, c: string, path: string, over: Partial<ConnPlan> = {}): ConnPlan {
  const chunks = split(serialize(tunnelHead(rng, 'get', c, path)), rng)
  // live555 clients send RTCP upstream on the GET; some clients send an HTTP request there.
  if (rng.chance(0.15)) {
    for (let n = rng.int(1, 3); n > 0; n--) chunks.push({ waitMs: rng.int(0, 300), bytes: interleaved(rng) })
  }
  if (rng.chance(0.03)) chunks.push({ waitMs: rng.int(0, 100), bytes: serialize(tunnelHead(rng, 'post', c, path)) })
  return conn(rng, chunks, { holdMs: rng.int(500, 3000), ...over })
}

export function tunnelCase (rng: Rng): CasePlan {
  const c = makeCookie(rng)
  const path = rng.pick(['/demo', '/live/demo', '/live/demo', '/nothing'])
  const from = `127.0.${rng.int(1, 4)}.${rng.int(1, 16)}`
  const shape = rng.weighted([
    [50, 'pair'],
    [10, 'post-first'],
    [10, 're-post'],
    [8, 'overlap'],
    [6, 'dup-get'],
    [6, 'get-only'],
    [5, 'post-only'],
    [5, 'two-addresses']
  ] as const)
  const units = postUnits(rng)
  const get = getConn(rng, c, path, { from })
  const postAt = rng.int(5, 120)
  const conns: ConnPlan[] = []
  if (shape === 'pair' || shape === 'two-addresses') {
    conns.push(
      get,
      postConn(rng, c, path, units, { startMs: postAt, from: shape === 'pair' ? from : `127.0.9.${rng.int(1, 8)}` })
    )
  }
  if (shape === 'post-first') conns.push({ ...get, startMs: rng.int(10, 400) }, postConn(rng, c, path, units, { from }))
  if (shape === 're-post' || shape === 'overlap') {
    const cut = rng.int(1, Math.max(1, units.length - 1))
    const first = postConn(rng, c, path, units.slice(0, cut), {
      startMs: postAt,
      from,
      holdMs: rng.int(50, 600),
      close: shape === 're-post' ? 'end' : 'destroy'
    })
    const secondAt = shape === 're-post' ? postAt + first.holdMs + rng.int(50, 400) : postAt + rng.int(0, 80)
    conns.push(get, first, postConn(rng, c, path, units.slice(cut), { startMs: secondAt, from }))
  }
  if (shape === 'dup-get') {
    conns.push(
      get,
      postConn(rng, c, path, units, { startMs: postAt, from }),
      getConn(rng, c, path, { startMs: postAt + rng.int(0, 200), from })
    )
  }
  if (shape === 'get-only') conns.push(get)
  if (shape === 'post-only') conns.push(postConn(rng, c, path, units, { from }))
  // A client that waits for its GET's reply before the POST keeps the GET open past the dialogue.
  if (conns[0] === get && conns.length > 1) {
    get.holdMs = Math.max(
      get.holdMs,
      conns.reduce((n, x) => Math.max(n, x.startMs + x.holdMs), 0)
    )
  }
  return { kind: `tunnel-${shape}`, conns }
}
