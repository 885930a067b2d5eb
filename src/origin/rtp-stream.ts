/**
 * One RTP stream's sender state (RFC 3550): SSRC, next sequence number, random timestamp
 * base, packet/octet counts for sender reports. Turns a media unit's payloads into RTP
 * packets (marker on the last packet of the unit, i.e. of the access unit).
 */
import { randomBytes } from 'node:crypto'
import type { MediaUnit } from './media-source.js'
import { buildSenderReport } from './rtcp.js'
import { buildRtpPacket, RTP_HEADER } from './rtp.js'

export function random32 (): number { return randomBytes(4).readUInt32BE(0) }

export class RtpStream {
  readonly ssrc = random32()
  readonly payloadType: number
  readonly clockRate: number
  readonly tsBase = random32()
  seq = random32() & 0xffff
  packets = 0
  octets = 0
  /** Last sent RTP timestamp and the wall time (ms) it was due. */
  #lastTs: number | undefined
  #lastWallMs = 0

  constructor (payloadType: number, clockRate: number) {
    this.payloadType = payloadType
    this.clockRate = clockRate
  }

  /** RTP timestamp for a unit/position offset in clock units. */
  timestamp (rtpTime: number): number { return (this.tsBase + rtpTime) >>> 0 }

  /** Build the unit's packets; `wallDueMs` is the wall-clock time the unit was due. */
  packetize (u: MediaUnit, wallDueMs: number, stamp: boolean): Buffer[] {
    const ts = this.timestamp(u.rtpTime)
    const out: Buffer[] = new Array(u.payloads.length)
    const stampNs = stamp ? process.hrtime.bigint() : undefined
    for (let i = 0; i < u.payloads.length; i++) {
      const payload = u.payloads[i]!
      out[i] = buildRtpPacket(
        {
          payloadType: this.payloadType,
          marker: i === u.payloads.length - 1,
          seq: this.seq,
          timestamp: ts,
          ssrc: this.ssrc,
          ...(stampNs !== undefined ? { stampNs } : {})
        },
        payload
      )
      this.seq = (this.seq + 1) & 0xffff
      this.packets++
      this.octets += payload.length + (out[i]!.length - RTP_HEADER - payload.length)
    }
    this.#lastTs = ts
    this.#lastWallMs = wallDueMs
    return out
  }

  /** A compound SR for now, or undefined before the first packet. */
  senderReport (wallMs: number, cname: string): Buffer | undefined {
    if (this.#lastTs === undefined) return undefined
    const rtpTimestamp = (this.#lastTs + Math.round(((wallMs - this.#lastWallMs) / 1000) * this.clockRate)) >>> 0
    return buildSenderReport({
      ssrc: this.ssrc, wallMs, rtpTimestamp, packetCount: this.packets, octetCount: this.octets, cname
    })
  }
}
