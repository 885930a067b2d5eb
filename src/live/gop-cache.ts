/**
 * GOP cache of a live path (pure: no sockets, no timers) and keyframe detection in RTP payloads.
 *
 * A new viewer of a playing live path starts with the cached packets: from the start of the last
 * keyframe's access unit (H.264: SPS/PPS then the IDR, when the encoder sends them in-band) up to
 * the newest packet, every track. Its player can decode the first frame at once instead of
 * waiting up to a GOP for the next keyframe.
 *
 * H.264 payloads (RFC 6184 §5.2-5.8): NAL header F|NRI|Type(5). Types 1-23 single NAL unit;
 * 24 STAP-A (16-bit size + NAL, repeated); 28 FU-A (FU header S|E|R|Type, the type is the
 * fragmented NAL's, S marks the first fragment). IDR = 5, SPS = 7, PPS = 8.
 * H.265 payloads (RFC 7798 §4.4): 2-byte header, Type = (b0 >> 1) & 0x3f; 48 AP, 49 FU (FU
 * header S|E|Type(6)). IRAP pictures are types 16-21; VPS/SPS/PPS 32-34.
 *
 * A key access unit is recognised when its IDR/IRAP first packet arrives; parameter-set packets
 * with the same timestamp just before it belong to the same access unit and start the GOP.
 * Parameter sets sent without a keyframe do not start a GOP.
 *
 * Streams without H.264/H.265 video ('any' mode: audio only, or a codec we cannot parse) start
 * a new "GOP" at every frame of the key track, so a viewer starts at the next frame boundary.
 */
export type KeyMode = 'h264' | 'h265' | 'any'

export interface NalSummary {
  /** Contains the first packet of a keyframe (IDR / IRAP) NAL unit. */
  key: boolean
  /** Contains a parameter set (SPS/PPS, or VPS/SPS/PPS). */
  params: boolean
}

const NONE: NalSummary = { key: false, params: false }

export function h264Summary (p: Buffer): NalSummary {
  if (p.length < 1) return NONE
  const type = p[0]! & 0x1f
  if (type >= 1 && type <= 23) return { key: type === 5, params: type === 7 || type === 8 }
  if (type === 28 || type === 29) { // FU-A / FU-B
    if (p.length < 2 || (p[1]! & 0x80) === 0) return NONE
    const t = p[1]! & 0x1f
    return { key: t === 5, params: t === 7 || t === 8 }
  }
  if (type === 24) { // STAP-A
    let key = false
    let params = false
    let off = 1
    while (off + 2 < p.length) {
      const size = p.readUInt16BE(off)
      if (size === 0 || off + 2 + size > p.length) break
      const t = p[off + 2]! & 0x1f
      if (t === 5) key = true
      if (t === 7 || t === 8) params = true
      off += 2 + size
    }
    return { key, params }
  }
  return NONE
}

export function h265Summary (p: Buffer): NalSummary {
  if (p.length < 2) return NONE
  const type = (p[0]! >> 1) & 0x3f
  const of = (t: number): NalSummary => ({ key: t >= 16 && t <= 21, params: t >= 32 && t <= 34 })
  if (type < 48) return of(type)
  if (type === 49) { // FU
    if (p.length < 3 || (p[2]! & 0x80) === 0) return NONE
    return of(p[2]! & 0x3f)
  }
  if (type === 48) { // AP: 2-byte size + NAL, repeated
    let key = false
    let params = false
    let off = 2
    while (off + 3 < p.length) {
      const size = p.readUInt16BE(off)
      if (size < 2 || off + 2 + size > p.length) break
      const s = of((p[off + 2]! >> 1) & 0x3f)
      key ||= s.key
      params ||= s.params
      off += 2 + size
    }
    return { key, params }
  }
  return NONE
}

/** One packet of a live path as the relay sends it (already rewritten). */
export interface LivePacket {
  track: number
  /** The RTP packet (or compound RTCP packet when rtcp is true). */
  data: Buffer
  rtcp: boolean
  seq: number
  timestamp: number
  /** First packet of a frame (video: a new timestamp on the track; other tracks: every packet). */
  frameStart: boolean
  /** First packet of a GOP (set when the keyframe is recognised, possibly a few packets later). */
  key: boolean
}

export interface GopCacheOptions {
  mode: KeyMode
  /** Track whose keyframes start a GOP (the video track; any track in 'any' mode). */
  keyTrack: number
  /** Largest cache in bytes; a longer GOP stops being cached until the next keyframe. 0 = no cache. */
  maxBytes: number
}

export interface PushResult {
  /** A new GOP was recognised with this packet (the cache now starts at its first packet). */
  gopStarted: boolean
}

export class GopCache {
  readonly #o: GopCacheOptions
  #packets: LivePacket[] = []
  #bytes = 0
  /** Packets since a parameter-set packet that may start the next GOP (same timestamp). */
  #candidate: { ts: number, packets: LivePacket[] } | null = null
  #valid = false
  #lastKeyTs: number | null = null
  #overflows = 0

  constructor (o: GopCacheOptions) { this.#o = o }

  /** Bytes of RTP held. */
  get bytes (): number { return this.#bytes }
  /** True when the cache starts at a keyframe and holds everything since. */
  get valid (): boolean { return this.#valid && this.#packets.length > 0 }
  /** Times a GOP outgrew maxBytes. */
  get overflows (): number { return this.#overflows }
  /** The cached GOP (first packet is the key packet) — do not mutate. */
  packets (): readonly LivePacket[] { return this.#valid ? this.#packets : [] }

  /** Forget everything (upstream lost: the next GOP comes from a new source). */
  clear (): void {
    this.#packets = []
    this.#bytes = 0
    this.#candidate = null
    this.#valid = false
    this.#lastKeyTs = null
  }

  /** Whether `p` (RTP, on the key track) carries the first packet of a keyframe / parameter set. */
  summary (p: LivePacket, payload: Buffer | null): NalSummary {
    if (p.rtcp || p.track !== this.#o.keyTrack || payload === null) return NONE
    if (this.#o.mode === 'h264') return h264Summary(payload)
    if (this.#o.mode === 'h265') return h265Summary(payload)
    return p.frameStart ? { key: true, params: false } : NONE
  }

  /** Add a packet in arrival order; `nal` is summary() of it. RTCP is never cached. */
  push (p: LivePacket, nal: NalSummary): PushResult {
    if (p.rtcp) return { gopStarted: false }
    const onKeyTrack = p.track === this.#o.keyTrack
    if (onKeyTrack && this.#candidate !== null && p.timestamp !== this.#candidate.ts) {
      // Parameter sets without a keyframe: ordinary packets of the current GOP.
      const c = this.#candidate
      this.#candidate = null
      for (const q of c.packets) this.#append(q)
    }
    if (onKeyTrack && nal.key && p.timestamp !== this.#lastKeyTs) {
      const start = this.#candidate?.packets ?? []
      this.#candidate = null
      this.#packets = []
      this.#bytes = 0
      this.#valid = true
      this.#lastKeyTs = p.timestamp
      const first = start[0] ?? p
      first.key = true
      for (const q of start) this.#append(q)
      this.#append(p)
      return { gopStarted: true }
    }
    if (onKeyTrack && nal.params && this.#candidate === null && this.#o.mode !== 'any') {
      this.#candidate = { ts: p.timestamp, packets: [p] }
      return { gopStarted: false }
    }
    if (this.#candidate !== null) { this.#candidate.packets.push(p); return { gopStarted: false } }
    this.#append(p)
    return { gopStarted: false }
  }

  #append (p: LivePacket): void {
    if (!this.#valid) return
    if (this.#bytes + p.data.length > this.#o.maxBytes) {
      // Too long a GOP to keep: new viewers wait for the next keyframe instead.
      this.#overflows++
      this.#packets = []
      this.#bytes = 0
      this.#valid = false
      return
    }
    this.#packets.push(p)
    this.#bytes += p.data.length
  }
}
