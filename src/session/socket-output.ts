/**
 * The output budget of one client connection, shared by everything that writes to it (proxied
 * replies and frames, the gateway's own answers, live fan-out, WebSocket pongs and closes): a write
 * that would queue more than `limit` bytes is not queued, and the connection's owner is told once
 * (it closes the connection with a logged reason). A process-wide ledger bounds the sum: bytes
 * queued past a socket's high-water mark count there, and a connection that already has bytes
 * queued may not push the sum over its limit.
 */
import type net from 'node:net'

/** Bytes queued towards clients past their sockets' high-water marks, in one process. */
export class OutputLedger {
  readonly limit: number
  #total = 0

  /** `limit` 0 = no process-wide bound. */
  constructor (limit: number) { this.limit = limit }

  get total (): number { return this.#total }
  adjust (delta: number): void { this.#total += delta }
}

export type OverflowHandler = (reason: string) => void

export class SocketOutput {
  readonly #socket: net.Socket
  readonly #limit: number
  readonly #ledger: OutputLedger | null
  /** What this connection counts in the ledger now. */
  #accounted = 0
  #exceeded = false
  #onOverflow: OverflowHandler | null = null

  constructor (socket: net.Socket, limit: number, ledger: OutputLedger | null) {
    this.#socket = socket
    this.#limit = limit
    this.#ledger = ledger
    socket.on('drain', () => this.#account(false))
    socket.once('close', () => this.release())
  }

  /** Who to tell when the budget is exceeded (once). */
  onOverflow (handler: OverflowHandler): void { this.#onOverflow = handler }

  get queued (): number { return this.#socket.writableLength }
  /** True once a write was refused: the connection is being closed. */
  get exceeded (): boolean { return this.#exceeded }

  /** socket.write within the budget; a refused write is dropped (`done` still runs) and reported. */
  write (buf: Buffer | string, done?: () => void): boolean {
    const n = typeof buf === 'string' ? Buffer.byteLength(buf) : buf.length
    if (!this.#admit(n)) { done?.(); return true }
    const ok = this.#socket.write(buf, done)
    this.#account(!ok)
    this.#after()
    return ok
  }

  /** `a` then `b` in one writev, within the budget as one write. */
  writeBoth (a: Buffer, b: Buffer, done?: () => void): boolean {
    if (!this.#admit(a.length + b.length)) { done?.(); return true }
    const s = this.#socket
    s.cork()
    s.write(a)
    const ok = s.write(b, done)
    s.uncork()
    this.#account(!ok)
    this.#after()
    return ok
  }

  /** A write the kernel did not take that left more than the budget queued also ends the connection. */
  #after (): void {
    const queued = this.#socket.writableLength
    if (queued > this.#limit) {
      this.#refuse(`${queued} bytes queued towards the client (limits.clientOutputBytes ${this.#limit})`)
    }
  }

  /** Stop counting this connection in the ledger (it closed). */
  release (): void {
    this.#ledger?.adjust(-this.#accounted)
    this.#accounted = 0
  }

  #admit (n: number): boolean {
    if (this.#exceeded || this.#socket.destroyed) return false
    const queued = this.#socket.writableLength
    // An empty queue always takes one write (a large SDP reply): the budget bounds what piles up unread.
    if (queued > 0 && queued + n > this.#limit) {
      return this.#refuse(`${queued + n} bytes would be queued towards the client ` +
        `(limits.clientOutputBytes ${this.#limit})`)
    }
    const ledger = this.#ledger
    if (ledger !== null && ledger.limit > 0 && queued > 0 &&
        ledger.total - this.#accounted + queued + n > ledger.limit) {
      return this.#refuse(`output queued towards clients would pass limits.clientOutputBytesTotal (${ledger.limit}) ` +
        `while this client has ${queued} bytes unread`)
    }
    return true
  }

  #refuse (reason: string): false {
    this.#exceeded = true
    const h = this.#onOverflow
    this.#onOverflow = null
    h?.(reason)
    return false
  }

  /** Count what is queued past the high-water mark (`full`: the last write said so); nothing once drained. */
  #account (full: boolean): void {
    const now = full ? this.#socket.writableLength : 0
    this.#ledger?.adjust(now - this.#accounted)
    this.#accounted = now
  }
}
