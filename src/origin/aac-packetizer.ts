/**
 * AAC RTP payloads, RFC 3640 mode AAC-hbr: a 16-bit AU-headers-length (in bits) followed by
 * one 16-bit AU-header (13-bit AU-size, 3-bit AU-index = 0) and the raw AU. One access unit
 * per packet; an AU larger than the payload limit is fragmented (§3.2.3: every fragment
 * carries the whole AU's size; the RTP marker goes on the last fragment only). Each returned
 * payload is the end of an AU (marker) unless followed by another fragment of the same AU.
 */
import { DEFAULT_MAX_PAYLOAD } from './h264-packetizer.js'

export const AU_HEADER_BYTES = 4

export function packetizeAac (au: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): Buffer[] {
  if (au.length > 0x1fff) throw new RangeError(`AAC access unit of ${au.length} bytes exceeds 13-bit AU-size`)
  const room = maxPayload - AU_HEADER_BYTES
  const out: Buffer[] = []
  for (let off = 0; off < au.length || out.length === 0; off += room) {
    const end = Math.min(au.length, off + room)
    const p = Buffer.allocUnsafe(AU_HEADER_BYTES + end - off)
    p.writeUInt16BE(16, 0)
    p.writeUInt16BE((au.length << 3) & 0xfff8, 2)
    au.copy(p, AU_HEADER_BYTES, off, end)
    out.push(p)
  }
  return out
}
