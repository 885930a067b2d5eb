/**
 * The bench stamp: an RTP header extension (RFC 3550 §5.3.1) with profile 0x544E ('TN') and
 * two 32-bit words holding the sender's monotonic clock (process.hrtime.bigint(), ns) when the
 * packet was written to its socket. CLOCK_MONOTONIC is one clock for every process on a Linux
 * host, so a receiver on the same machine gets one-way delay as its own hrtime minus the stamp.
 * The embedded origin writes the same extension with `stampPayloads` (tunnelgate/rtp).
 *
 *   RTP fixed header (X=1) | 0x54 0x4E | 0x00 0x02 | ns (64-bit big-endian) | payload
 */
import { STAMP_PROFILE_NS } from 'tunnelgate/rtp'

export { STAMP_PROFILE_NS }
/** Bytes the extension adds after the fixed header (and any CSRCs). */
export const STAMP_EXT_BYTES = 12

/** Write the extension at `off` (just after the fixed header). */
export function writeStamp (buf: Buffer, off: number, ns: bigint): void {
  buf.writeUInt16BE(STAMP_PROFILE_NS, off)
  buf.writeUInt16BE(2, off + 2)
  buf.writeBigUInt64BE(ns, off + 4)
}

/**
 * The stamp (ns, as a double: exact below 2^53 ns ≈ 104 days of uptime) of the RTP packet at
 * `rtp` in `buf` (`len` bytes), or -1 when it carries none.
 */
export function readStamp (buf: Buffer, rtp: number, len: number): number {
  if (len < 24) return -1
  const b0 = buf[rtp]!
  if ((b0 & 0x10) === 0) return -1
  const off = rtp + 12 + (b0 & 15) * 4
  if (off + 12 > rtp + len || buf.readUInt16BE(off) !== STAMP_PROFILE_NS) return -1
  return buf.readUInt32BE(off + 4) * 4294967296 + buf.readUInt32BE(off + 8)
}

/** Now on the stamp clock, as a double (ns). */
export function nowNs (): number { return Number(process.hrtime.bigint()) }
