/**
 * RTP fixed header (RFC 3550 §5.1), built around a payload in one allocation.
 *
 * With `stampUs` the packet carries a one-word-profile header extension (RFC 3550 §5.3.1,
 * profile 0x5447 'TG', two words: the packet's due time in µs since the Unix epoch): the
 * bench stamp hook. Players ignore header extensions they do not know.
 * With `stampNs` the extension has profile 0x544E 'TN' and holds the sender's monotonic clock
 * (process.hrtime.bigint(), ns) when the packet was built: what the bench reads (bench/src/stamp.ts).
 */
export const RTP_HEADER = 12
export const STAMP_PROFILE = 0x5447
export const STAMP_PROFILE_NS = 0x544e

export interface RtpFields {
  payloadType: number
  marker: boolean
  seq: number
  timestamp: number
  ssrc: number
  /** Bench stamp: due time in µs since the epoch (adds a 12-byte header extension). */
  stampUs?: number
  /** Bench stamp: monotonic send time in ns (profile 0x544E; takes precedence over stampUs). */
  stampNs?: bigint
}

export function buildRtpPacket (f: RtpFields, payload: Buffer): Buffer {
  const ext = f.stampUs === undefined && f.stampNs === undefined ? 0 : 12
  const out = Buffer.allocUnsafe(RTP_HEADER + ext + payload.length)
  out[0] = ext === 0 ? 0x80 : 0x90
  out[1] = (f.marker ? 0x80 : 0) | (f.payloadType & 0x7f)
  out.writeUInt16BE(f.seq & 0xffff, 2)
  out.writeUInt32BE(f.timestamp >>> 0, 4)
  out.writeUInt32BE(f.ssrc >>> 0, 8)
  if (ext !== 0) {
    out.writeUInt16BE(f.stampNs !== undefined ? STAMP_PROFILE_NS : STAMP_PROFILE, 12)
    out.writeUInt16BE(2, 14)
    out.writeBigUInt64BE(f.stampNs ?? BigInt(Math.max(0, Math.round(f.stampUs!))), 16)
  }
  payload.copy(out, RTP_HEADER + ext)
  return out
}

/** Parsed view of an RTP packet (for tests and clients). */
export function parseRtpHeader (b: Buffer): {
  payloadType: number
  marker: boolean
  seq: number
  timestamp: number
  ssrc: number
  payload: Buffer
} {
  if (b.length < RTP_HEADER || (b[0]! >> 6) !== 2) throw new RangeError('not an RTP packet')
  const cc = b[0]! & 15
  let off = RTP_HEADER + cc * 4
  if (b[0]! & 0x10) off += 4 + b.readUInt16BE(off + 2) * 4
  let end = b.length
  if (b[0]! & 0x20) end -= b[b.length - 1]!
  return {
    payloadType: b[1]! & 0x7f,
    marker: (b[1]! & 0x80) !== 0,
    seq: b.readUInt16BE(2),
    timestamp: b.readUInt32BE(4),
    ssrc: b.readUInt32BE(8),
    payload: b.subarray(off, end)
  }
}
