/**
 * The session's output towards its client: every byte the session sends there passes here. Whole
 * `$` frames may be dropped past limits.dropFramesAboveBytes queued (never part of one, never an RTSP
 * message); otherwise a full client pauses the backend's reads (backpressure) and a client that stays
 * full for limits.clientStallMs is closed. Frames that lie in the backend link's read buffer are
 * written in place or copied by the rules of `ReadGate` (docs/architecture.md, "Read buffer").
 */
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { ClientSide } from './client-side.js'
import type { ReadGate } from './read-gate.js'
import type { SessionTimers, TimerHandle } from './timers.js'

/** Label set of the per-write byte counter (no object per write). */
const BACKEND_TO_CLIENT = Object.freeze({ direction: 'backend_to_client' })

/** Where the bytes being written come from: the backend link's read buffer, and its gate. */
export interface ReadSource {
  /** True while the bytes being handled lie in the read buffer (valid until the read returns). */
  readonly borrowed: boolean
  readonly gate: ReadGate | null
}

/** What the output needs of its session. */
export interface OutputOwner {
  readonly closed: boolean
  error (code: ErrorCode, reason: string): void
  close (reason: string, outcome: string): void
}

export interface OutputDeps {
  limits: Config['limits']
  metrics: GatewayMetrics
  logger: Logger
  clientAddress: string
  timers: SessionTimers
  owner: OutputOwner
}

export class ClientOutput {
  /** Bytes and `$` frames sent (frames counted as they arrive from the backend, dropped or not). */
  bytes = 0
  frames = 0
  readonly #client: ClientSide
  readonly #limits: Config['limits']
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #clientAddress: string
  readonly #timers: SessionTimers
  readonly #owner: OutputOwner
  /** Set once the backend link exists. */
  source: ReadSource | null = null
  #dropping = false
  #stallTimer: TimerHandle | null = null

  constructor (client: ClientSide, deps: OutputDeps) {
    this.#client = client
    this.#limits = deps.limits
    this.#metrics = deps.metrics
    this.#log = deps.logger
    this.#clientAddress = deps.clientAddress
    this.#timers = deps.timers
    this.#owner = deps.owner
  }

  /** The client drained its queue. */
  drained (): void {
    this.source?.gate?.drained()
    this.clearStall()
  }

  clearStall (): void {
    if (this.#stallTimer !== null) { this.#timers.clear(this.#stallTimer); this.#stallTimer = null }
  }

  /** `frames` > 0: `buf` is that many whole `$` frames; 0: an RTSP message, whole. */
  write (buf: Buffer, frames = 0): void { this.writeBoth(buf, null, frames) }

  /** `a` followed by `b` (whole `$` frames, `frames` of them in all) as one write. */
  writeBoth (a: Buffer, b: Buffer | null, frames: number): void {
    const owner = this.#owner
    if (owner.closed) return
    const client = this.#client
    const dropAbove = this.#limits.dropFramesAboveBytes
    if (frames > 0 && dropAbove > 0 && client.queued > dropAbove) {
      this.#metrics.framesDroppedTotal.inc(frames)
      if (!this.#dropping) {
        this.#dropping = true
        this.#metrics.limitHitsTotal.inc({ limit: 'limits.dropFramesAboveBytes' })
        this.#log.info({ client: this.#clientAddress, queued: client.queued }, 'client lagging: dropping whole frames')
      }
      return
    }
    if (frames > 0) this.#dropping = false
    const length = b === null ? a.length : a.length + b.length
    this.bytes += length
    this.#metrics.bytesTotal.inc(BACKEND_TO_CLIENT, length)
    // Frames may lie in the read buffer (borrowed): written in place, or copied when the client already
    // has bytes queued; the gate keeps the backend from reading into the buffer while it is held.
    const gate = this.source?.gate ?? null
    let ok: boolean
    if (b !== null && client.writeBoth === undefined) {
      ok = client.write(Buffer.concat([a, b], length))
    } else if (frames > 0 && gate !== null && this.source!.borrowed) {
      if (gate.inPlace(client.queued)) {
        ok = b === null ? client.write(a, gate.written) : client.writeBoth!(a, b, gate.written)
        gate.afterWrite(client.queued)
      } else {
        ok = b === null ? client.write(Buffer.from(a)) : client.writeBoth!(Buffer.from(a), Buffer.from(b))
      }
    } else {
      ok = b === null ? client.write(a) : client.writeBoth!(a, b)
    }
    if (owner.closed) return
    // A corked pair of writes (writeBoth) of 16 KiB or more says false even when the kernel took it
    // all at once: pause only for bytes really queued.
    if (!ok && dropAbove === 0 && client.queued > 0) {
      gate?.full()
      this.#armStall()
    }
  }

  #armStall (): void {
    const stallMs = this.#limits.clientStallMs
    if (stallMs <= 0 || this.#stallTimer !== null) return
    this.#stallTimer = this.#timers.set('session-stall-timer', stallMs, () => {
      this.#stallTimer = null
      const queued = this.#client.queued
      if (this.#owner.closed || queued === 0) return
      this.#owner.error('TG_ERR_TUN_OUTPUT_OVERFLOW', `client read nothing for ${stallMs} ms (${queued} bytes queued)`)
      this.#metrics.limitHitsTotal.inc({ limit: 'limits.clientStallMs' })
      this.#log.info({ client: this.#clientAddress, queued, stallMs }, 'client stalled: tunnel closed')
      this.#owner.close('client-stalled', 'client_slow')
    })
  }
}
