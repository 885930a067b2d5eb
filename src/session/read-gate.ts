/**
 * Flow control for a source socket read into one reused buffer (socket `onread`,
 * backend.readBufferBytes) whose bytes are written to a sink straight from that buffer: ProxySession
 * (backend → client) and the portal's RelayReads (relay node → client) share it.
 *
 * The source is paused for either of two reasons, and resumed when neither holds:
 * - the sink is past its high-water mark (`full`, until `drained`), as `pipe()` does;
 * - a write made in place was queued by the sink (`afterWrite`): the buffer may not be read into
 *   again until that write has left the process (`written`, the write's callback).
 * Bytes for a sink that already has bytes queued are not written in place (`inPlace` says to copy
 * them): they would only wait in the queue.
 */
import type net from 'node:net'

export class ReadGate {
  readonly #source: net.Socket
  /** Writes in place whose callback has not come yet. */
  #inFlight = 0
  #waitDrain = false
  #waitWrite = false
  /** The callback of every write made in place. */
  readonly written = (): void => {
    if (--this.#inFlight > 0 || !this.#waitWrite) return
    this.#waitWrite = false
    if (!this.#waitDrain) this.#source.resume()
  }

  constructor (source: net.Socket) { this.#source = source }

  /**
   * Before writing buffer bytes to a sink with `queued` bytes waiting: true = write them in place with `written` as
   * callback; false = write a copy.
   */
  inPlace (queued: number): boolean {
    if (queued > 0) return false
    this.#inFlight++
    return true
  }

  /** After a write in place: the sink still holds bytes, so the source reads nothing until they leave. */
  afterWrite (queued: number): void {
    if (queued > 0 && this.#inFlight > 0 && !this.#waitWrite) { this.#waitWrite = true; this.#source.pause() }
  }

  /** The sink's write returned false. */
  full (): void {
    if (this.#waitDrain) return
    this.#waitDrain = true
    this.#source.pause()
  }

  /** The sink emitted 'drain'. */
  drained (): void {
    if (!this.#waitDrain) return
    this.#waitDrain = false
    if (!this.#waitWrite) this.#source.resume()
  }

  /** Read freely from now on (what is read is discarded, e.g. after the client left). */
  release (): void {
    this.#waitDrain = false
    this.#waitWrite = false
    this.#source.resume()
  }
}
