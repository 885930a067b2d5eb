/**
 * Streaming base64 decoder for the client→server (POST) leg of the QuickTime tunnel.
 *
 * Grammar accepted (RFC 4648 §4 alphabet, plus the §5 URL-safe symbols; Apple's tunnel paper
 * only says "base64", and real clients encode every RTSP message separately with its own padding):
 *
 *   post-body = *( quantum / partial-quantum pad / skip / garbage )
 *   quantum   = 4symbol                         ; → 3 bytes
 *   partial   = 2symbol "=" / 3symbol "="       ; → 1 / 2 bytes ("==" is "=" then an ignored "=")
 *   symbol    = ALPHA / DIGIT / "+" / "/" / "-" / "_"
 *   skip      = SP / HTAB / CR / LF / NUL       ; ignored anywhere, even inside a quantum
 *                                               ; (MIME line breaks; GStreamer 1.16–1.18 NULs)
 *   garbage   = any other byte                  ; counted and skipped like whitespace (reference §1.5,
 *                                               ; glib): an inserted stray byte costs nothing, while
 *                                               ; dropping the pending symbols would misalign the rest
 *                                               ; of the message and merge it into the next one
 *
 * Symbols carry over between pushes (0–3 pending), so a TCP segment boundary may fall anywhere,
 * including between two "=" characters. `=` is a message separator here: it flushes what is
 * pending and resets, so "QUI=QUJD" decodes to "ABABC" (Node's Buffer.from(…, 'base64') stops at
 * the first "=" and yields "AB").
 *
 * Pure: no sockets, no timers. One output buffer is allocated per push (3/4 of the input), and
 * the loop touches each input byte once through a lookup table.
 */

/** Lookup-table classes for bytes that are not symbols (symbols map to 0–63). */
const SKIP = 64
const PAD = 65
const GARBAGE = 66

const TABLE: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(GARBAGE)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i
  t[0x2d] = 62 // '-' (URL-safe alphabet)
  t[0x5f] = 63 // '_'
  t[0x20] = SKIP
  t[0x09] = SKIP
  t[0x0d] = SKIP
  t[0x0a] = SKIP
  t[0x00] = SKIP
  t[0x3d] = PAD
  return t
})()

const EMPTY = Buffer.alloc(0)

export interface Base64PushResult {
  /** Decoded bytes of this push (a fresh buffer, or a shared empty one). */
  data: Buffer
  /** Garbage bytes seen in this push (including a lone symbol dropped by "="). */
  garbage: number
}

export class Base64StreamDecoder {
  /** Pending symbols, 6 bits each, most recent in the low bits. */
  #acc = 0
  /** Number of pending symbols (0–3). */
  #n = 0
  #garbageTotal = 0

  /** Garbage bytes seen since construction. */
  get garbageTotal (): number { return this.#garbageTotal }

  /** Symbols waiting for the rest of their quantum (0–3). */
  get pendingSymbols (): number { return this.#n }

  push (chunk: Buffer): Base64PushResult {
    const len = chunk.length
    if (len === 0) return { data: EMPTY, garbage: 0 }
    // Upper bound: every 4 symbols (pending included) give 3 bytes; a flush gives at most 2.
    const out = Buffer.allocUnsafe((((this.#n + len) >>> 2) + 1) * 3)
    let o = 0
    let acc = this.#acc
    let n = this.#n
    let garbage = 0
    for (let i = 0; i < len; i++) {
      const v = TABLE[chunk[i]!]!
      if (v < 64) {
        acc = (acc << 6) | v
        if (++n === 4) {
          out[o++] = (acc >>> 16) & 0xff
          out[o++] = (acc >>> 8) & 0xff
          out[o++] = acc & 0xff
          acc = 0
          n = 0
        }
      } else if (v === SKIP) {
        // ignored
      } else if (v === PAD) {
        if (n === 2) {
          out[o++] = (acc >>> 4) & 0xff
        } else if (n === 3) {
          out[o++] = (acc >>> 10) & 0xff
          out[o++] = (acc >>> 2) & 0xff
        } else if (n === 1) {
          garbage++ // a lone symbol cannot encode a byte
        }
        acc = 0
        n = 0
      } else {
        garbage++
      }
    }
    this.#acc = acc
    this.#n = n
    this.#garbageTotal += garbage
    return { data: o === 0 ? EMPTY : out.subarray(0, o), garbage }
  }
}
