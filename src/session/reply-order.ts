/**
 * Reply ordering of one session: every client request takes a slot when it arrives, and replies
 * leave in request order whoever makes them (the backend's, matched by CSeq, or the gateway's own:
 * an error answer, a 504 when the backend is silent). After fatal client input the session reads
 * nothing more but lets the replies before it (and its 400) flush, in order, before closing.
 */
import type { EntryPoint } from '../core/containment.js'
import { getHeader, serializeMessage, type RtspResponse } from '../tunnel/codec/rtsp-message.js'
import type { SessionTimers, TimerHandle } from './timers.js'

export interface ReplySlot {
  readonly cseq: string | undefined
  readonly method: string
  /** Filled when the reply is known (backend's, or the gateway's own). */
  out?: Buffer
  timer?: TimerHandle
}

/** Where replies go and what the order needs of its session. */
export interface ReplySink {
  /** A reply that is next in order (an RTSP message, whole). */
  write (buf: Buffer): void
  /** A reply the gateway made itself (tunnelgate_gateway_responses_total{status}). */
  answered (status: number): void
  close (reason: string, outcome: string): void
  pauseInput (): void
}

/** How long replies to earlier requests may take to flush before a fatally malformed one closes the tunnel. */
export const FLUSH_DEADLINE_MS = 2000

export class ReplyOrder {
  #slots: ReplySlot[] = []
  readonly #sink: ReplySink
  readonly #timers: SessionTimers
  /** Fatal client input: close once the ordered replies are flushed (or at the deadline). */
  #closeWhenFlushed: { reason: string, outcome: string, timer: TimerHandle } | null = null

  constructor (sink: ReplySink, timers: SessionTimers) {
    this.#sink = sink
    this.#timers = timers
  }

  /** Slots waiting for their reply or for an earlier one. */
  get waiting (): number { return this.#slots.length }
  /** Closing after a fatal input: no more client input is taken. */
  get flushing (): boolean { return this.#closeWhenFlushed !== null }

  /** A slot for a request that just arrived, last in order. */
  open (cseq: string | undefined, method: string): ReplySlot {
    const slot: ReplySlot = { cseq, method }
    this.#slots.push(slot)
    return slot
  }

  /** The request of the last slot opened is answered elsewhere (the live fan-out): drop its slot. */
  withdrawLast (): void { this.#slots.pop() }

  /** Answer `slot` with `onTimeout` unless its reply comes within `ms`. */
  expect (slot: ReplySlot, where: EntryPoint, ms: number, onTimeout: () => void): void {
    slot.timer = this.#timers.set(where, ms, () => { if (slot.out === undefined) onTimeout() })
  }

  /** The oldest slot still without a reply for `cseq` (a backend reply), if any. */
  match (cseq: string | undefined): ReplySlot | undefined {
    return this.#slots.find(s => s.out === undefined && s.cseq === cseq)
  }

  /** Fill `slot` (a Buffer: the backend's reply, serialized; a response: the gateway's own) and flush in order. */
  fill (slot: ReplySlot, res: RtspResponse | Buffer): void {
    this.#timers.clear(slot.timer)
    if (!Buffer.isBuffer(res)) this.#sink.answered(res.status)
    slot.out = Buffer.isBuffer(res) ? res : serializeMessage(res)
    while (this.#slots.length > 0 && this.#slots[0]!.out !== undefined) this.#sink.write(this.#slots.shift()!.out!)
    const c = this.#closeWhenFlushed
    if (c !== null && this.#slots.length === 0) this.#sink.close(c.reason, c.outcome)
  }

  /** A gateway answer to input that took no slot (an undecodable request): in order, behind the others. */
  reply (res: RtspResponse): void { this.fill(this.open(getHeader(res, 'CSeq'), ''), res) }

  /** Answer every slot still waiting with `make(cseq)` (backend lost, no backend, a fault). */
  answerAll (make: (cseq: string | undefined) => RtspResponse): void {
    for (const s of [...this.#slots]) if (s.out === undefined) this.fill(s, make(s.cseq))
  }

  /**
   * Fatal client input: pause it, and close once every reply before it has flushed, within
   * FLUSH_DEADLINE_MS (at most `replyTimeoutMs`).
   */
  closeAfterFlush (reason: string, outcome: string, replyTimeoutMs: number): void {
    if (this.#slots.length === 0) { this.#sink.close(reason, outcome); return }
    if (this.#closeWhenFlushed !== null) return
    this.#sink.pauseInput()
    const ms = Math.min(FLUSH_DEADLINE_MS, replyTimeoutMs)
    const timer = this.#timers.set('session-flush-timer', ms, () => { this.#sink.close(reason, outcome) })
    this.#closeWhenFlushed = { reason, outcome, timer }
  }

  /** The session closed: no timer left, nothing more flushed. */
  clear (): void {
    if (this.#closeWhenFlushed !== null) this.#timers.clear(this.#closeWhenFlushed.timer)
    for (const s of this.#slots) this.#timers.clear(s.timer)
    this.#slots = []
  }
}
