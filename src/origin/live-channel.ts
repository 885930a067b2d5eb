/**
 * A file looped as a live channel: one cursor, one pacer, one set of RTP streams (SSRC,
 * sequence numbers, timestamps continuous across loops) for every viewer. Each unit is
 * read and packetised once; the same packet buffers are written to every viewer.
 *
 * A viewer joins at the next video keyframe: its PLAY reply is sent just before that
 * keyframe's first packet, so RTP-Info names exactly the first packet it receives. A TCP
 * viewer whose send buffer is over the cap is skipped (packets counted as dropped) and
 * rejoins at the next keyframe. The channel runs while it has viewers.
 */
import type { MediaSource, MediaUnit } from './media-source.js'
import type { OriginMetrics } from './metrics.js'
import type { ViewerOutput } from './output.js'
import { Pacer } from './pacer.js'
import { RtpStream } from './rtp-stream.js'
import { LATE_MS, SR_INTERVAL_MS, type RtpInfoEntry } from './vod-player.js'

export interface LiveViewer {
  out: ViewerOutput
  /** Called once, at the keyframe where the viewer starts (before its first packet). */
  onStart: ((rtpInfo: RtpInfoEntry[]) => void) | undefined
  active: boolean
  /** Tracks that still need their first sender report (sent before the first packet). */
  needSr?: Set<number>
}

export interface LiveOptions {
  metrics: OriginMetrics
  maxBacklog: number
  stamp: boolean
  cname: string
  onError: (err: unknown) => void
}

export class LiveChannel {
  readonly src: MediaSource
  readonly #o: LiveOptions
  readonly #viewers = new Set<LiveViewer>()
  readonly #keyTrack: number
  #streams: RtpStream[] = []
  #pacer: Pacer<MediaUnit> | undefined
  #lastSr = 0

  constructor (src: MediaSource, o: LiveOptions) {
    this.src = src
    this.#o = o
    const v = src.tracks.findIndex((t) => t.kind === 'video')
    this.#keyTrack = v === -1 ? 0 : v
  }

  get viewers (): number { return this.#viewers.size }

  /** The shared SSRC of a track (valid while the channel runs). */
  ssrc (track: number): number { return this.#streams[track]?.ssrc ?? 0 }

  add (v: LiveViewer): void {
    v.active = false
    this.#viewers.add(v)
    if (this.#pacer === undefined) this.#start()
  }

  remove (v: LiveViewer): void {
    if (!this.#viewers.delete(v)) return
    v.active = false
    if (this.#viewers.size === 0) this.stop()
  }

  /** Make sure the RTP streams exist (SETUP replies carry the SSRC before PLAY). */
  prepare (): void {
    if (this.#streams.length === 0) {
      this.#streams = this.src.tracks.map((t) => new RtpStream(t.payloadType, t.clockRate))
    }
  }

  stop (): void {
    this.#pacer?.stop()
    this.#pacer = undefined
    this.#streams = []
  }

  #start (): void {
    this.prepare()
    const send = (batch: MediaUnit[], now: number): void => this.#send(batch, now)
    const pacer: Pacer<MediaUnit> = new Pacer(this.src.cursor(0, true), send, (err) => {
      if (err !== undefined) this.#o.onError(err)
      if (this.#pacer === pacer) this.#pacer = undefined
    })
    this.#pacer = pacer
    pacer.start()
  }

  #send (batch: MediaUnit[], nowMs: number): void {
    const wallNow = Date.now()
    const viewers = [...this.#viewers]
    for (const v of viewers) v.out.cork()
    for (const u of batch) {
      const stream = this.#streams[u.track]!
      const startsHere = u.key && u.track === this.#keyTrack
      const firstSeq = stream.seq
      const pkts = stream.packetize(u, wallNow - (nowMs - u.dueMs), this.#o.stamp)
      const late = nowMs - u.dueMs > LATE_MS
      for (const v of viewers) {
        if (!v.active) {
          if (!startsHere) continue
          v.active = true
          v.needSr = new Set(v.out.tracks.keys())
          const cb = v.onStart
          v.onStart = undefined
          cb?.(this.#rtpInfo(v, u, firstSeq))
        }
        if (!v.out.tracks.has(u.track)) continue
        if (v.out.backlog() > this.#o.maxBacklog) {
          v.active = false
          this.#o.metrics.droppedPackets.inc(pkts.length)
          continue
        }
        if (v.needSr?.delete(u.track) === true) {
          // Before the first packet: lets players sync audio and video from the start.
          const sr = stream.senderReport(wallNow - (nowMs - u.dueMs), this.#o.cname)
          if (sr !== undefined) v.out.sendRtcp(u.track, sr)
        }
        for (const p of pkts) v.out.sendRtp(u.track, p)
        if (late) this.#o.metrics.latePackets.inc(pkts.length)
      }
    }
    if (wallNow - this.#lastSr >= SR_INTERVAL_MS) {
      this.#lastSr = wallNow
      this.#streams.forEach((s, track) => {
        const sr = s.senderReport(wallNow, this.#o.cname)
        if (sr === undefined) return
        for (const v of viewers) if (v.active) v.out.sendRtcp(track, sr)
      })
    }
    for (const v of viewers) v.out.uncork()
  }

  #rtpInfo (v: LiveViewer, u: MediaUnit, firstSeq: number): RtpInfoEntry[] {
    const keyClock = this.src.tracks[u.track]!.clockRate
    return [...v.out.tracks.keys()].sort((a, b) => a - b).map((track) => {
      const s = this.#streams[track]!
      if (track === u.track) return { track, seq: firstSeq, rtptime: s.timestamp(u.rtpTime) }
      const rtpTime = Math.round((u.rtpTime / keyClock) * this.src.tracks[track]!.clockRate)
      return { track, seq: s.seq, rtptime: s.timestamp(rtpTime) }
    })
  }
}
