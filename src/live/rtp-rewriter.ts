/**
 * RTP/RTCP header rewriting for a live path (pure: bytes and numbers in, bytes out, no timers).
 *
 * A live path's viewers see ONE continuous RTP timeline per track, whatever happens upstream:
 * the relay's own SSRC (chosen when the path opens, announced in every SETUP reply), sequence
 * numbers that continue +1 across an upstream reconnect, and timestamps that advance by the wall
 * time that passed during the gap (RFC 3550 §5.1: the timestamp clock runs with real time), so a
 * player sees a pause, not a new stream.
 *
 *   RTP header (RFC 3550 §5.1)     byte 0: V(2) P X CC(4)   byte 1: M PT(7)
 *                                  bytes 2-3 sequence number, 4-7 timestamp, 8-11 SSRC
 *
 * An "epoch" is one upstream source (one backend session, one SSRC). The first packet of a new
 * epoch fixes the offsets: seqOut = seqIn + seqOff, tsOut = tsIn + tsOff (mod 2^16, 2^32).
 * Within an epoch reordering and loss pass through unchanged (the offsets are constant).
 * A packet whose SSRC differs from the epoch's starts a new epoch by itself (an upstream that
 * restarted its stream without a reconnect).
 *
 * The rewrite happens once per packet per path, not per viewer: every viewer of a path shares
 * the rewritten buffers (per-viewer state is only the interleaved channel and the start point).
 */
export const RTP_HEADER = 12
export const RTCP_SR = 200
export const RTCP_RR = 201
export const RTCP_SDES = 202
export const RTCP_BYE = 203

export function isRtp (b: Buffer): boolean { return b.length >= RTP_HEADER && (b[0]! >> 6) === 2 }
export function rtpSeq (b: Buffer): number { return b.readUInt16BE(2) }
export function rtpTimestamp (b: Buffer): number { return b.readUInt32BE(4) }
export function rtpSsrc (b: Buffer): number { return b.readUInt32BE(8) }
export function rtpMarker (b: Buffer): boolean { return (b[1]! & 0x80) !== 0 }

/** The payload of an RTP packet (after CSRCs, header extension; padding removed); null if malformed. */
export function rtpPayload (b: Buffer): Buffer | null {
  if (!isRtp(b)) return null
  let off = RTP_HEADER + 4 * (b[0]! & 0x0f)
  if ((b[0]! & 0x10) !== 0) {
    if (b.length < off + 4) return null
    off += 4 + 4 * b.readUInt16BE(off + 2)
  }
  let end = b.length
  if ((b[0]! & 0x20) !== 0 && end > off) end -= b[end - 1]!
  return end < off ? null : b.subarray(off, end)
}

export interface TrackRewriterState {
  ssrcOut: number
  clockRate: number
}

export class TrackRewriter {
  readonly ssrcOut: number
  readonly clockRate: number
  #epochSsrc: number | null = null
  #needEpoch = true
  #seqOff = 0
  #tsOff = 0
  #started = false
  #lastSeqOut = 0
  #lastTsOut = 0
  #lastWallMs = 0
  #epochs = 0

  constructor (o: TrackRewriterState) {
    this.ssrcOut = o.ssrcOut >>> 0
    this.clockRate = o.clockRate
  }

  /** Epochs seen (1 after the first packet; +1 per upstream change). */
  get epochs (): number { return this.#epochs }
  get lastSeq (): number { return this.#lastSeqOut }
  get lastTimestamp (): number { return this.#lastTsOut }

  /** The next packet starts a new upstream epoch (call on reconnect). */
  newEpoch (): void { this.#needEpoch = true }

  #begin (ssrcIn: number, seqIn: number | null, tsIn: number, nowMs: number): void {
    this.#epochSsrc = ssrcIn
    this.#needEpoch = false
    this.#epochs++
    if (!this.#started) {
      // First epoch: keep the upstream's numbers (only the SSRC is ours).
      this.#seqOff = 0
      this.#tsOff = 0
      this.#started = true
      this.#lastWallMs = nowMs
      this.#lastTsOut = tsIn
      if (seqIn !== null) this.#lastSeqOut = (seqIn - 1) & 0xffff
      return
    }
    const elapsed = Math.max(1, Math.round((Math.max(0, nowMs - this.#lastWallMs) * this.clockRate) / 1000))
    this.#tsOff = (this.#lastTsOut + elapsed - tsIn) >>> 0
    if (seqIn !== null) this.#seqOff = (this.#lastSeqOut + 1 - seqIn) & 0xffff
    else this.#seqPending = true
  }

  /** The epoch began with an RTCP packet: the seq offset is fixed by the first RTP packet. */
  #seqPending = false

  /** Rewrite an RTP packet in place (seq, timestamp, SSRC). False when it is not RTP. */
  rtp (b: Buffer, nowMs: number): boolean {
    if (!isRtp(b)) return false
    const ssrcIn = rtpSsrc(b)
    const seqIn = rtpSeq(b)
    const tsIn = rtpTimestamp(b)
    if (this.#needEpoch || ssrcIn !== this.#epochSsrc) this.#begin(ssrcIn, seqIn, tsIn, nowMs)
    else if (this.#seqPending) {
      this.#seqOff = (this.#lastSeqOut + 1 - seqIn) & 0xffff
    }
    this.#seqPending = false
    const seqOut = (seqIn + this.#seqOff) & 0xffff
    const tsOut = (tsIn + this.#tsOff) >>> 0
    b.writeUInt16BE(seqOut, 2)
    b.writeUInt32BE(tsOut, 4)
    b.writeUInt32BE(this.ssrcOut, 8)
    // Track the newest packet (serial-number arithmetic, RFC 1982) for the next epoch's offsets.
    if (((seqOut - this.#lastSeqOut) & 0xffff) < 0x8000) {
      this.#lastSeqOut = seqOut
      this.#lastTsOut = tsOut
      this.#lastWallMs = nowMs
    }
    return true
  }

  /**
   * Rewrite a compound RTCP packet for viewers: sender reports (SSRC, RTP timestamp; report
   * blocks about the upstream's own sources removed) and single-chunk SDES (SSRC) are kept;
   * BYE (the upstream going away is not the end of the live stream), RR and APP are dropped.
   * Returns null when nothing is left.
   */
  rtcp (b: Buffer, nowMs: number): Buffer | null {
    const parts: Buffer[] = []
    let off = 0
    while (off + 8 <= b.length) {
      if ((b[off]! >> 6) !== 2) return parts.length === 0 ? null : Buffer.concat(parts)
      const pt = b[off + 1]!
      const len = 4 * (b.readUInt16BE(off + 2) + 1)
      if (off + len > b.length) break
      const pkt = b.subarray(off, off + len)
      if (pt === RTCP_SR && len >= 28) {
        const sr = Buffer.from(pkt.subarray(0, 28))
        sr[0] = (sr[0]! & 0xc0) // V=2, no padding, RC=0
        sr.writeUInt16BE(6, 2)
        const ssrcIn = sr.readUInt32BE(4)
        const tsIn = sr.readUInt32BE(16)
        if (this.#needEpoch || ssrcIn !== this.#epochSsrc) this.#begin(ssrcIn, null, tsIn, nowMs)
        sr.writeUInt32BE(this.ssrcOut, 4)
        sr.writeUInt32BE((tsIn + this.#tsOff) >>> 0, 16)
        parts.push(sr)
      } else if (pt === RTCP_SDES && (pkt[0]! & 0x1f) === 1 && len >= 8) {
        const sdes = Buffer.from(pkt)
        sdes.writeUInt32BE(this.ssrcOut, 4)
        parts.push(sdes)
      }
      off += len
    }
    if (parts.length === 0) return null
    // A compound packet starts with SR or RR (RFC 3550 §6.1): an SDES alone is not sent.
    if (parts[0]![1] !== RTCP_SR) return null
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }
}

/** A random non-zero 32-bit SSRC. */
export function randomSsrc (rand: () => number = Math.random): number {
  let s = 0
  while (s === 0) s = Math.floor(rand() * 0x100000000) >>> 0
  return s
}
