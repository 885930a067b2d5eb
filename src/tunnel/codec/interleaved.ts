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

/**
 * The one `$` frame encoder: header and payload written into `out` at `offset` (room for
 * INTERLEAVED_HEADER + payload.length bytes); returns the offset after the frame.
 */
export function writeInterleaved (out: Buffer, offset: number, channel: number, payload: Buffer): number {
  if (!Number.isInteger(channel) || channel < 0 || channel > 255) {
    throw new RangeError(`interleaved channel ${channel} out of range 0-255`)
  }
  if (payload.length > MAX_INTERLEAVED_PAYLOAD) throw new RangeError(`interleaved payload ${payload.length} > 65535`)
  out[offset] = INTERLEAVED_MAGIC
  out[offset + 1] = channel
  out.writeUInt16BE(payload.length, offset + 2)
  payload.copy(out, offset + INTERLEAVED_HEADER)
  return offset + INTERLEAVED_HEADER + payload.length
}

/** One `$` frame in a buffer of its own. */
export function encodeInterleaved (channel: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(INTERLEAVED_HEADER + payload.length)
  writeInterleaved(out, 0, channel, payload)
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
