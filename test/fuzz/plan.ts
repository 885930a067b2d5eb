/**
 * What one fuzz case sends: connections, each a list of chunks with the pause before each, how the
 * connection ends and whether it reads. A chunk with an `encode` is RTSP text: the driver fills in
 * `%SESSION%` (the last Session id the case was sent) and encodes the chunk on its own, as real
 * clients encode each message (as is for plain RTSP; base64 for a POST body, optionally chunked;
 * one masked binary WebSocket frame). These plans are what a fixture stores and a replay sends.
 */
import type { Rng } from './prng.js'

export const SESSION_MARK = '%SESSION%'

/** `text`: the session id filled in, nothing else. */
export type Encoding = 'text' | 'base64' | 'chunked-base64' | 'ws'

export interface Chunk {
  /** Pause before this chunk, ms. */
  waitMs: number
  bytes: Buffer
  /** Fill in the session id, then encode (see above). */
  encode?: Encoding
  /** Before sending, wait (up to a bound) until the case has received this many RTSP replies. */
  replies?: number
}

/**
 * How a connection ends once its chunks are sent: `destroy` after `holdMs`; `end` sends FIN after
 * `holdMs` and gives the gateway a moment to close its side; `half` sends FIN at once and keeps
 * reading for `holdMs`; `reset` aborts with RST after `holdMs`.
 */
export type CloseMode = 'destroy' | 'end' | 'half' | 'reset'

export interface ConnPlan {
  /** After the case starts, ms. */
  startMs: number
  /** Loopback source address (the per-address limits see several clients). */
  from: string
  chunks: Chunk[]
  close: CloseMode
  holdMs: number
  /** false: never read what the gateway sends. */
  read: boolean
}

export interface CasePlan {
  /** Which grammar made it (for the stats and the fixture's name). */
  kind: string
  conns: ConnPlan[]
}

/** Pauses: mostly none, sometimes short, rarely past the gateway's head timeout. */
export function pause (rng: Rng): number {
  return rng.weighted<() => number>([
    [80, () => 0],
    [14, () => rng.int(1, 60)],
    [5, () => rng.int(60, 400)],
    [1, () => rng.int(900, 1600)]
  ])()
}

/** Cut `bytes` at random offsets (sometimes byte by byte) with a pause before each piece. */
export function split (bytes: Buffer, rng: Rng, extra: Omit<Chunk, 'bytes' | 'waitMs'> = {}): Chunk[] {
  if (bytes.length <= 1) return [{ waitMs: pause(rng), bytes, ...extra }]
  let cuts: number[]
  if (bytes.length <= 96 && rng.chance(0.03)) cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)
  else {
    cuts = [...new Set(Array.from({ length: rng.small(0, 6) }, () => rng.int(1, bytes.length - 1)))].sort(
      (a, b) => a - b
    )
  }
  const out: Chunk[] = []
  let prev = 0
  for (const c of [...cuts, bytes.length]) {
    out.push({
      waitMs: out.length === 0 ? 0 : pause(rng),
      bytes: bytes.subarray(prev, c),
      ...(out.length === 0 ? extra : {})
    })
    prev = c
  }
  return out
}

/** Ending, hold time and reading of one connection, by the weights the driver uses. */
export function connEnding (rng: Rng): Pick<ConnPlan, 'close' | 'holdMs' | 'read'> {
  const close = rng.weighted<CloseMode>([[45, 'destroy'], [25, 'end'], [12, 'half'], [18, 'reset']])
  const holdMs = rng.weighted<() => number>([
    [60, () => rng.int(0, 100)],
    [30, () => rng.int(100, 800)],
    [10, () => rng.int(800, 3000)]
  ])()
  return { close, holdMs, read: rng.chance(0.92) }
}

/** A loopback address other than the reference viewer's 127.0.0.1. */
export function clientAddress (rng: Rng): string {
  return `127.0.${rng.int(1, 4)}.${rng.int(1, 16)}`
}

export function conn (rng: Rng, chunks: Chunk[], over: Partial<ConnPlan> = {}): ConnPlan {
  return { startMs: 0, from: clientAddress(rng), chunks, ...connEnding(rng), ...over }
}
