/**
 * Mutations. Token level, on the message model: swap, duplicate, drop and case-flip header lines,
 * splice a header in from another message, give a value an odd one, fold a value onto a
 * continuation line, give one line an odd ending, shuffle or repeat start-line tokens. Stream
 * level: reorder, repeat, drop and truncate whole messages. Byte level (kept, at a lower rate):
 * bit flips, inserted bytes, cut, repeated and truncated ranges.
 */
import type { Rng } from './prng.js'
import { cloneMessage, type TextMessage } from './message.js'
import { CONTROL, lineEnd, oddValue } from './grammar/lexicon.js'

type TokenMutation = (m: TextMessage, rng: Rng, donors: readonly TextMessage[]) => void

const tokenMutations: ReadonlyArray<readonly [number, TokenMutation]> = [
  [
    3,
    (m, rng) => {
      if (m.headers.length > 1) {
        const i = rng.int(0, m.headers.length - 1)
        const j = rng.int(0, m.headers.length - 1)
        ;[m.headers[i], m.headers[j]] = [m.headers[j]!, m.headers[i]!]
      }
    }
  ],
  [
    3,
    (m, rng) => {
      if (m.headers.length > 0) {
        const h = rng.pick(m.headers)
        m.headers.splice(rng.int(0, m.headers.length), 0, { ...h, value: rng.chance(0.5) ? h.value : oddValue(rng) })
      }
    }
  ],
  [
    3,
    (m, rng) => {
      if (m.headers.length > 0) m.headers.splice(rng.int(0, m.headers.length - 1), 1)
    }
  ],
  [
    3,
    (m, rng, donors) => {
      const from = donors.filter(d => d.headers.length > 0)
      if (from.length > 0) m.headers.splice(rng.int(0, m.headers.length), 0, { ...rng.pick(rng.pick(from).headers) })
    }
  ],
  [
    4,
    (m, rng) => {
      if (m.headers.length > 0) rng.pick(m.headers).value = oddValue(rng)
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.headers.length === 0) return
      const h = rng.pick(m.headers)
      const cut = rng.int(0, h.value.length)
      h.value = h.value.slice(0, cut) + '\r\n' + rng.pick([' ', '\t', '  ']) + h.value.slice(cut)
    }
  ],
  [
    3,
    (m, rng) => {
      const which = rng.int(-2, m.headers.length - 1)
      if (which === -2) m.startEol = lineEnd(rng, 1)
      else if (which === -1) m.blank = lineEnd(rng, 1)
      else m.headers[which]!.eol = lineEnd(rng, 1)
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.headers.length > 0) {
        const h = rng.pick(m.headers)
        h.name = rng.chance(0.5) ? h.name.toUpperCase() : h.name.toLowerCase()
      }
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.headers.length > 0) {
        const h = rng.pick(m.headers)
        const at = rng.int(0, h.name.length)
        h.name = h.name.slice(0, at) + rng.pick([' ', '\t', '\x00', ':', '(', 'é']) + h.name.slice(at)
      }
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.start.length > 1) {
        const i = rng.int(0, m.start.length - 1)
        const j = rng.int(0, m.start.length - 1)
        ;[m.start[i], m.start[j]] = [m.start[j]!, m.start[i]!]
      }
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.start.length > 0) m.start.splice(rng.int(0, m.start.length), 0, rng.pick(m.start))
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.start.length > 0) m.start.splice(rng.int(0, m.start.length - 1), 1)
    }
  ],
  [
    2,
    (m, rng) => {
      if (m.start.length === 0) return
      const i = rng.int(0, m.start.length - 1)
      const t = m.start[i]!
      const at = rng.int(0, t.length)
      m.start[i] = t.slice(0, at) + rng.string(CONTROL + ' %', 1) + t.slice(at)
    }
  ],
  [
    1,
    (m, rng) => {
      m.headers.push(
        ...Array.from({ length: rng.int(30, 80) }, (_, k) => ({ name: `X-F${k}`, sep: ': ', value: 'v', eol: '\r\n' }))
      )
    }
  ],
  [
    1,
    (m, rng) => {
      if (m.body.length > 0) {
        m.body = rng.chance(0.5)
          ? m.body.subarray(0, rng.int(0, m.body.length - 1))
          : Buffer.concat([m.body, rng.bytes(rng.small(1, 300))])
      }
    }
  ]
]

/** A copy of `m` with 1..n token-level mutations applied (`donors` lend header lines). */
export function mutateMessage (m: TextMessage, rng: Rng, donors: readonly TextMessage[] = [], n = 3): TextMessage {
  const out = cloneMessage(m)
  const count = rng.int(1, n)
  for (let i = 0; i < count; i++) rng.weighted(tokenMutations)(out, rng, donors)
  return out
}

/** Reorder, repeat, drop, splice in from `donors`, or truncate the messages of one stream. */
export function mutateStream<T> (items: T[], rng: Rng, donors: readonly T[] = []): T[] {
  const out = [...items]
  const op = rng.int(0, 4)
  if (op === 0 && out.length > 1) {
    const i = rng.int(0, out.length - 1)
    const j = rng.int(0, out.length - 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  if (op === 1 && out.length > 0) out.splice(rng.int(0, out.length), 0, rng.pick(out))
  if (op === 2 && out.length > 1) out.splice(rng.int(0, out.length - 1), 1)
  if (op === 3 && donors.length > 0) out.splice(rng.int(0, out.length), 0, rng.pick(donors))
  if (op === 4 && out.length > 1) out.length = rng.int(1, out.length - 1)
  return out
}

const INTERESTING = Buffer.from('\r\n\x00$:;= %\xff\x7f\t', 'latin1')

/** Byte-level mutations of a finished byte string. */
export function mutateBytes (src: Buffer, rng: Rng, n = 3): Buffer {
  let b = Buffer.from(src)
  const count = rng.int(1, n)
  for (let i = 0; i < count; i++) {
    const at = b.length === 0 ? 0 : rng.int(0, b.length - 1)
    const op = rng.weighted([
      [3, 'flip'],
      [3, 'insert'],
      [2, 'interesting'],
      [2, 'cut'],
      [2, 'dup'],
      [1, 'truncate']
    ] as const)
    if (op === 'flip' && b.length > 0) b[at] = b[at]! ^ (1 << rng.int(0, 7))
    else if (op === 'insert') b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.small(1, 64)), b.subarray(at)])
    else if (op === 'interesting') {
      b = Buffer.concat([
        b.subarray(0, at),
        INTERESTING.subarray(rng.int(0, INTERESTING.length - 1)).subarray(0, 1),
        b.subarray(at)
      ])
    } else if (op === 'cut') b = Buffer.concat([b.subarray(0, at), b.subarray(at + rng.small(1, 200))])
    else if (op === 'dup') {
      const len = rng.small(1, 400)
      b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)])
    } else if (op === 'truncate') b = b.subarray(0, at)
  }
  return b
}
