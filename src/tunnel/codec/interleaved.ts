/**
 * RTSP interleaved binary data (RFC 2326 §10.12):
 *
 *   '$' (0x24) | channel (1 byte) | length (2 bytes, big-endian) | payload (length bytes)
 */
export const INTERLEAVED_MAGIC = 0x24
export const INTERLEAVED_HEADER = 4
export const MAX_INTERLEAVED_PAYLOAD = 0xffff

export interface InterleavedFrame {
  kind: 'frame'
  channel: number
  /** The payload (a view into the input where it arrived whole: no copy). */
  payload: Buffer
  /** The whole frame as it arrived, header included (a view where possible). */
  raw: Buffer
}

export function encodeInterleaved (channel: number, payload: Buffer): Buffer {
  if (channel < 0 || channel > 255) throw new RangeError(`interleaved channel ${channel} out of range 0-255`)
  if (payload.length > MAX_INTERLEAVED_PAYLOAD) throw new RangeError(`interleaved payload ${payload.length} > 65535`)
  const out = Buffer.allocUnsafe(INTERLEAVED_HEADER + payload.length)
  out[0] = INTERLEAVED_MAGIC
  out[1] = channel
  out.writeUInt16BE(payload.length, 2)
  payload.copy(out, INTERLEAVED_HEADER)
  return out
}

/** Write only the 4-byte header (for scatter writes of header + payload). */
export function encodeInterleavedHeader (channel: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(INTERLEAVED_HEADER)
  out[0] = INTERLEAVED_MAGIC
  out[1] = channel
  out.writeUInt16BE(length, 2)
  return out
}

/**
 * The whole `$` frames back to back at the start of `buf`: their total length in bytes and their
 * count (0, 0 when `buf` does not start with a whole frame). Walks the 4-byte headers only: the
 * allocation-free fast path for backend reads that hold nothing but frames.
 */
export function leadingFrames (buf: Buffer): { bytes: number, frames: number } {
  let off = 0
  let frames = 0
  const len = buf.length
  while (off + INTERLEAVED_HEADER <= len && buf[off] === INTERLEAVED_MAGIC) {
    const end = off + INTERLEAVED_HEADER + ((buf[off + 2]! << 8) | buf[off + 3]!)
    if (end > len) break
    off = end
    frames++
  }
  return { bytes: off, frames }
}
