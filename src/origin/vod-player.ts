/**
 * Video on demand for one viewer: its own timeline, paced in real time from sample
 * timestamps; PLAY from a position (seek), PAUSE (remembers the next unsent unit), resume.
 * Backpressure: when the viewer's TCP send buffer passes the cap the pacer waits for drain.
 * At the end of the file each track gets an RTCP BYE so players see the end of stream.
 */
import type { MediaSource, MediaUnit } from './media-source.js'
import type { OriginMetrics } from './metrics.js'
import type { ViewerOutput } from './output.js'
import { Pacer } from './pacer.js'
import { buildBye } from './rtcp.js'
import type { RtpStream } from './rtp-stream.js'

export const LATE_MS = 50
export const SR_INTERVAL_MS = 5000

export interface RtpInfoEntry { track: number, seq: number, rtptime: number }

export interface PlayerOptions {
  metrics: OriginMetrics
  maxBacklog: number
  stamp: boolean
  cname: string
}

export class VodPlayer {
  readonly #src: MediaSource
  readonly #out: ViewerOutput
  readonly #streams: RtpStream[]
  readonly #o: PlayerOptions
  #pacer: Pacer<MediaUnit> | undefined
  /** Timeline index of the next unit to send (resume point). */
  #nextIdx = 0
  #startSec = 0
  #lastSr = 0
  #ended = false
  /** Tracks that still need their first sender report after PLAY. */
  #needSr = new Set<number>()

  constructor (src: MediaSource, out: ViewerOutput, streams: RtpStream[], o: PlayerOptions) {
    this.#src = src
    this.#out = out
    this.#streams = streams
    this.#o = o
  }

  get playing (): boolean { return this.#pacer?.running === true }

  /** Current media position in seconds. */
  position (): number {
    if (this.#pacer?.running === true) return this.#startSec + this.#pacer.now() / 1000
    return this.#src.timeAt(this.#nextIdx)
  }

  /**
   * Start playing at `startSec` (a seek point), or resume at the pause point when undefined.
   * Returns the real start position and the RTP-Info values.
   */
  play (startSec: number | undefined): { start: number, rtpInfo: RtpInfoEntry[] } {
    this.#pacer?.stop()
    const cursor = startSec === undefined ? this.#src.cursorAt(this.#nextIdx) : this.#src.cursor(startSec, false)
    const start = startSec ?? this.#src.timeAt(this.#nextIdx)
    this.#startSec = start
    this.#ended = false
    const rtpInfo = [...this.#out.tracks.keys()].sort((a, b) => a - b).map((track) => {
      const s = this.#streams[track]!
      return { track, seq: s.seq, rtptime: s.timestamp(this.#src.rtpTimeAt(track, start)) }
    })
    const pacer: Pacer<MediaUnit> = new Pacer(
      cursor, (batch, now) => this.#send(batch, now, pacer), (err) => this.#onEnd(pacer, err)
    )
    this.#pacer = pacer
    this.#lastSr = Date.now()
    this.#needSr = new Set(this.#out.tracks.keys())
    pacer.start()
    return { start, rtpInfo }
  }

  pause (): void {
    this.#pacer?.stop()
    this.#pacer = undefined
  }

  stop (): void { this.pause() }

  #send (batch: MediaUnit[], nowMs: number, pacer: Pacer<MediaUnit>): Promise<void> | undefined {
    const wallNow = Date.now()
    this.#out.cork()
    for (const u of batch) {
      this.#nextIdx = u.idx + 1
      if (!this.#out.tracks.has(u.track)) continue
      const stream = this.#streams[u.track]!
      const wallDue = wallNow - (nowMs - u.dueMs)
      const pkts = stream.packetize(u, wallDue, this.#o.stamp)
      if (this.#needSr.delete(u.track)) {
        const sr = stream.senderReport(wallDue, this.#o.cname)
        if (sr !== undefined) this.#out.sendRtcp(u.track, sr)
      }
      for (const p of pkts) this.#out.sendRtp(u.track, p)
      if (nowMs - u.dueMs > LATE_MS) this.#o.metrics.latePackets.inc(pkts.length)
    }
    if (wallNow - this.#lastSr >= SR_INTERVAL_MS) {
      this.#lastSr = wallNow
      for (const track of this.#out.tracks.keys()) {
        const sr = this.#streams[track]!.senderReport(wallNow, this.#o.cname)
        if (sr !== undefined) this.#out.sendRtcp(track, sr)
      }
    }
    this.#out.uncork()
    if (this.#out.backlog() > this.#o.maxBacklog && pacer.running) return this.#out.drained()
    return undefined
  }

  #onEnd (pacer: Pacer<MediaUnit>, err: unknown): void {
    if (this.#pacer !== pacer) return
    if (err !== undefined || pacer.running) return
    if (this.#ended || this.#out.closed) return
    // Ran off the end of the file (a stop() clears #pacer first, so it does not get here).
    this.#ended = true
    this.#pacer = undefined
    for (const track of this.#out.tracks.keys()) this.#out.sendRtcp(track, buildBye(this.#streams[track]!.ssrc))
  }
}
