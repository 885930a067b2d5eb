/**
 * One servable file: its tracks (first H.264 video, first AAC audio), a merged time-ordered
 * timeline of their samples, and cursors that read and packetise samples in that order.
 *
 * A cursor yields units `{ dueMs, track, rtpTime, key, payloads }`: `dueMs` is when the unit
 * should be on the wire relative to the cursor's start, `rtpTime` the unit's RTP timestamp
 * offset (track clock units, before a session's random base). Looping cursors (live) add
 * the loop length to both on every pass, so time never goes backwards across loops.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { packetizeAac } from './aac-packetizer.js'
import { DEFAULT_MAX_PAYLOAD, packetizeH264 } from './h264-packetizer.js'
import { Mp4Error, readMp4, type Mp4AudioTrack, type Mp4Sample, type Mp4VideoTrack } from './mp4-reader.js'
import type { SdpAudio, SdpVideo } from '../tunnel/codec/sdp/write.js'

export interface MediaTrack {
  /** 1-based position; the SDP control is `trackID=<n>`. */
  n: number
  control: string
  kind: 'video' | 'audio'
  payloadType: number
  clockRate: number
  timescale: number
  samples: Mp4Sample[]
  video?: Mp4VideoTrack
  audio?: Mp4AudioTrack
}

export interface MediaUnit {
  /** Index in the source's timeline (resume point after PAUSE: idx + 1). */
  idx: number
  dueMs: number
  track: number
  rtpTime: number
  /** Video sync sample (or any audio unit). */
  key: boolean
  payloads: Buffer[]
}

interface TimelineEntry { track: number, sample: number, t: number }

const AAC_OBJECT_TYPES = new Set([0x40, 0x66, 0x67, 0x68])

export class MediaSource {
  readonly name: string
  readonly file: string
  readonly durationSec: number
  readonly tracks: MediaTrack[]
  /** Loop length for live channels: the video track's length (or the longest track). */
  readonly loopSec: number
  readonly #timeline: TimelineEntry[]
  readonly #fh: FileHandle
  readonly #maxPayload: number

  private constructor (file: string, fh: FileHandle, tracks: MediaTrack[], durationSec: number, maxPayload: number) {
    this.file = file
    this.name = basename(file, extname(file))
    this.#fh = fh
    this.tracks = tracks
    this.durationSec = durationSec
    this.#maxPayload = maxPayload
    const video = tracks.find((t) => t.kind === 'video')
    this.loopSec = video?.video?.durationSec ?? durationSec
    const tl: TimelineEntry[] = []
    tracks.forEach(
      (tr, ti) => tr.samples.forEach(
        (s, si) => tl.push({ track: ti, sample: si, t: Math.max(0, s.dts) / tr.timescale })
      )
    )
    tl.sort((a, b) => a.t - b.t || a.track - b.track)
    this.#timeline = tl
  }

  /** Open and validate a file; throws Mp4Error with a reason when it cannot be served. */
  static async open (file: string, maxPayload = DEFAULT_MAX_PAYLOAD): Promise<MediaSource> {
    const mp4 = await readMp4(file)
    const tracks: MediaTrack[] = []
    const v = mp4.tracks.find((t): t is Mp4VideoTrack => t.kind === 'video')
    const a = mp4.tracks.find((t): t is Mp4AudioTrack => t.kind === 'audio')
    if (v === undefined && a === undefined) throw new Mp4Error('no audio or video track')
    if (v !== undefined) {
      if (v.codec !== 'avc1' && v.codec !== 'avc3') {
        throw new Mp4Error(`unsupported video codec '${v.codec}' (H.264 only)`)
      }
      if (v.sps.length === 0 || v.pps.length === 0) throw new Mp4Error('H.264 track without SPS/PPS in avcC')
      if (v.samples.length === 0) throw new Mp4Error('empty video track')
      tracks.push({
        n: tracks.length + 1,
        control: '',
        kind: 'video',
        payloadType: 96,
        clockRate: 90000,
        timescale: v.timescale,
        samples: v.samples,
        video: v
      })
    }
    if (a !== undefined) {
      if (a.codec !== 'mp4a' || !AAC_OBJECT_TYPES.has(a.objectType)) {
        throw new Mp4Error(`unsupported audio codec '${a.codec}' (object type 0x${a.objectType.toString(16)}; AAC ` +
          'only)')
      }
      if (a.asc.length < 2) throw new Mp4Error('AAC track without AudioSpecificConfig')
      tracks.push({
        n: tracks.length + 1,
        control: '',
        kind: 'audio',
        payloadType: 97,
        clockRate: a.sampleRate,
        timescale: a.timescale,
        samples: a.samples,
        audio: a
      })
    }
    for (const t of tracks) t.control = `trackID=${t.n}`
    const fh = await open(file, 'r')
    return new MediaSource(file, fh, tracks, mp4.durationSec, maxPayload)
  }

  sdpTracks (): Array<SdpVideo | SdpAudio> {
    return this.tracks.map((t) => t.kind === 'video'
      ? {
          kind: 'video',
          payloadType: t.payloadType,
          control: t.control,
          sps: t.video!.sps[0]!,
          pps: t.video!.pps,
          width: t.video!.width,
          height: t.video!.height
        }
      : {
          kind: 'audio',
          payloadType: t.payloadType,
          control: t.control,
          sampleRate: t.clockRate,
          channels: t.audio!.channels,
          asc: t.audio!.asc
        })
  }

  /**
   * Where playback from `npt` really starts: the last video sync sample at or before it
   * (audio-only: npt itself). Returns undefined when npt is past the end.
   */
  seekPoint (npt: number): number | undefined {
    if (!(npt >= 0) || npt > this.durationSec) return undefined
    const vi = this.tracks.findIndex((t) => t.kind === 'video')
    if (vi === -1) return npt
    const tr = this.tracks[vi]!
    let best = 0
    for (const s of tr.samples) {
      const t = s.pts / tr.timescale
      if (t > npt + 1e-6) break
      if (s.isSync) best = Math.max(0, t)
    }
    return best
  }

  /** RTP time offset (track clock units) for a position in seconds. */
  rtpTimeAt (track: number, sec: number): number { return Math.round(sec * this.tracks[track]!.clockRate) }

  /** Iterate units from `startSec` (a seekPoint), optionally looping forever. */
  cursor (startSec: number, loop: boolean): MediaCursor {
    let i = 0
    while (i < this.#timeline.length && this.#timeline[i]!.t < startSec - 1e-6) i++
    return new MediaCursor(this, this.#timeline, startSec, loop, i)
  }

  /** A non-looping cursor from a timeline index (resume after PAUSE); its start is that entry's time. */
  cursorAt (index: number): MediaCursor {
    const t = this.timeAt(index)
    return new MediaCursor(this, this.#timeline, t, false, index)
  }

  /** Media time of a timeline index (the duration past the end). */
  timeAt (index: number): number { return this.#timeline[index]?.t ?? this.durationSec }

  async readUnit (idx: number, e: TimelineEntry, loopIndex: number, startSec: number): Promise<MediaUnit> {
    const tr = this.tracks[e.track]!
    const s = tr.samples[e.sample]!
    const data = Buffer.allocUnsafe(s.size)
    const { bytesRead } = await this.#fh.read(data, 0, s.size, s.offset)
    if (bytesRead !== s.size) throw new Mp4Error(`short read of sample ${e.sample} in ${this.file}`)
    const loopSec = loopIndex * this.loopSec
    const payloads = tr.kind === 'video'
      ? packetizeH264(
        data, tr.video!.nalLengthSize, this.#maxPayload, s.isSync ? [tr.video!.sps[0]!, ...tr.video!.pps] : undefined
      )
      : packetizeAac(data, this.#maxPayload)
    return {
      idx,
      dueMs: (e.t + loopSec - startSec) * 1000,
      track: e.track,
      rtpTime: Math.round((s.pts / tr.timescale + loopSec) * tr.clockRate),
      key: tr.kind === 'audio' || s.isSync,
      payloads
    }
  }

  async close (): Promise<void> { await this.#fh.close().catch(() => {}) }
}

export class MediaCursor {
  readonly #src: MediaSource
  readonly #tl: TimelineEntry[]
  readonly #start: number
  readonly #loop: boolean
  #i: number
  #pass = 0

  constructor (src: MediaSource, tl: TimelineEntry[], startSec: number, loop: boolean, index: number) {
    this.#src = src
    this.#tl = tl
    this.#start = startSec
    this.#loop = loop
    this.#i = index
  }

  async next (): Promise<MediaUnit | undefined> {
    if (this.#i >= this.#tl.length) {
      if (!this.#loop || this.#tl.length === 0) return undefined
      this.#i = 0
      this.#pass++
    }
    const idx = this.#i++
    const e = this.#tl[idx]!
    // Within a looped pass, samples past the loop length would overlap the next pass.
    if (this.#loop && e.t >= this.#src.loopSec) return await this.next()
    return await this.#src.readUnit(idx, e, this.#pass, this.#start)
  }
}
