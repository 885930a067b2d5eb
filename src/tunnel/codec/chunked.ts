/**
 * Streaming de-chunker for a tunnel POST sent with `Transfer-Encoding: chunked` (reference §6
 * check 9). Grammar (RFC 9112 §7.1), with bare LF accepted wherever CRLF is expected:
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size   = 1*HEXDIG
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )     ; ignored
 *   trailer-section = *( field-line CRLF )                                ; skipped
 *
 * Pure push parser: chunk data is returned as it arrives (a chunk may span many pushes). Any
 * error is final: later pushes return the same error and no data.
 */

export interface ChunkedLimits {
  /** Longest chunk-size line (size + extensions), without its line ending. */
  maxSizeLineBytes: number
  /** Most hex digits in a chunk size (8 → < 4 GiB; leading zeros count). */
  maxSizeDigits: number
  /** Most bytes of trailer field lines after the last chunk (the final blank line is not counted). */
  maxTrailerBytes: number
}

export const DEFAULT_CHUNKED_LIMITS: Readonly<ChunkedLimits> = Object.freeze({
  maxSizeLineBytes: 1024,
  maxSizeDigits: 8,
  maxTrailerBytes: 8192
})

export interface ChunkedPushResult {
  data: Buffer
  error?: string
  done: boolean
}

const CR = 0x0d
const LF = 0x0a
const EMPTY = Buffer.alloc(0)

const enum State { Size, Data, DataEnd, Trailer, Done, Failed }

export class ChunkedDecoder {
  readonly #limits: ChunkedLimits
  #state = State.Size
  /** Current size line or trailer line (latin1), without line ending. */
  #line = ''
  #remaining = 0
  #trailerBytes = 0
  #sawCr = false
  #error: string | undefined

  constructor (limits: Partial<ChunkedLimits> = {}) { this.#limits = { ...DEFAULT_CHUNKED_LIMITS, ...limits } }

  get done (): boolean { return this.#state === State.Done }

  push (chunk: Buffer): ChunkedPushResult {
    if (this.#state === State.Failed) return { data: EMPTY, error: this.#error!, done: false }
    const parts: Buffer[] = []
    let i = 0
    const n = chunk.length
    while (i < n && this.#running()) {
      switch (this.#state) {
        case State.Size: {
          const lf = chunk.indexOf(LF, i)
          const stop = lf === -1 ? n : lf
          // Never copy more than the limit (+1 for a CR) into the line.
          this.#line += chunk.toString(
            'latin1', i, Math.min(stop, i + this.#limits.maxSizeLineBytes + 2 - this.#line.length)
          )
          if (this.#line.length > this.#limits.maxSizeLineBytes + 1) {
            this.#fail(`chunk-size line longer than ${this.#limits.maxSizeLineBytes} bytes`)
            break
          }
          if (lf === -1) { i = n; break }
          i = lf + 1
          this.#onSizeLine()
          break
        }
        case State.Data: {
          const take = Math.min(this.#remaining, n - i)
          parts.push(chunk.subarray(i, i + take))
          i += take
          this.#remaining -= take
          if (this.#remaining === 0) { this.#state = State.DataEnd; this.#sawCr = false }
          break
        }
        case State.DataEnd: {
          const b = chunk[i++]!
          if (b === CR && !this.#sawCr) { this.#sawCr = true; break }
          if (b === LF) { this.#state = State.Size; this.#line = ''; break }
          this.#fail('chunk data not followed by CRLF')
          break
        }
        case State.Trailer: {
          const lf = chunk.indexOf(LF, i)
          const stop = lf === -1 ? n : lf
          this.#trailerBytes += stop - i + (lf === -1 ? 0 : 1)
          if (this.#trailerBytes > this.#limits.maxTrailerBytes + 2) { // + the final blank line
            this.#fail(`trailer section longer than ${this.#limits.maxTrailerBytes} bytes`)
            break
          }
          // Only "is this line empty?" matters: keep at most the first two bytes.
          if (this.#line.length < 2) this.#line += chunk.toString('latin1', i, Math.min(stop, i + 2))
          if (lf === -1) { i = n; break }
          i = lf + 1
          const empty = this.#line === '' || this.#line === '\r'
          this.#line = ''
          if (empty) this.#state = State.Done
          break
        }
      }
    }
    const data = parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts)
    if (this.#error !== undefined) return { data, error: this.#error, done: false }
    return { data, done: this.#state === State.Done }
  }

  #running (): boolean { return this.#state !== State.Done && this.#state !== State.Failed }

  #onSizeLine (): void {
    let line = this.#line
    this.#line = ''
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (line.length > this.#limits.maxSizeLineBytes) {
      this.#fail(`chunk-size line longer than ${this.#limits.maxSizeLineBytes} bytes`)
      return
    }
    const m = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/.exec(line)
    if (!m) { this.#fail(`bad chunk-size line '${line.slice(0, 32)}'`); return }
    const digits = m[1]!
    if (digits.length > this.#limits.maxSizeDigits) {
      this.#fail(`chunk size has more than ${this.#limits.maxSizeDigits} hex digits`)
      return
    }
    const size = parseInt(digits, 16)
    if (size === 0) { this.#state = State.Trailer; this.#trailerBytes = 0; return }
    this.#remaining = size
    this.#state = State.Data
  }

  #fail (reason: string): void {
    this.#state = State.Failed
    this.#error = reason
    this.#line = ''
  }
}
