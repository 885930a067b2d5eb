/**
 * A client's RTSP stream (requests and `$` frames) as the chunks of one connection: each message
 * cut into pieces that are encoded on their own (so a POST body has padding mid-stream, as real
 * clients send it), a request that needs the replies before it waiting for them (most of the
 * time; otherwise it is pipelined), and for base64 bodies the odd whitespace, NUL or garbage
 * between pieces.
 */
import type { Rng } from '../prng.js'
import { isMessage, unitBytes, type StreamUnit } from '../message.js'
import { split, pause, type Chunk, type Encoding } from '../plan.js'

function noise (rng: Rng): Buffer {
  return Buffer.from(
    rng.pick(['\r\n', '\x00', ' ', '\t', '!!!', '=', '==', '%%%', '\xff\xfe', 'A', 'AB', 'ABC', '====']),
    'latin1'
  )
}

export function streamChunks (rng: Rng, units: readonly StreamUnit[], encode: Encoding, waitReplies = true): Chunk[] {
  const out: Chunk[] = []
  let requests = 0
  for (const u of units) {
    const bytes = unitBytes(u)
    const replies = isMessage(u) && requests > 0 && waitReplies && rng.chance(0.75) ? requests : undefined
    if (isMessage(u)) requests++
    const pieces = rng.chance(0.7) ? [bytes] : split(bytes, rng).map(c => c.bytes)
    pieces.forEach((p, i) => {
      out.push({
        waitMs: i === 0 && replies === undefined ? pause(rng) : 0,
        bytes: p,
        encode,
        ...(i === 0 && replies !== undefined ? { replies } : {})
      })
    })
    if (encode === 'base64' && rng.chance(0.05)) out.push({ waitMs: 0, bytes: noise(rng) })
  }
  return out
}
