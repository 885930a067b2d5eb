/** RTP packets built by hand for the live fan-out's unit tests (payload type 96, version 2). */
export function rtp (
  seq: number,
  ts: number,
  ssrc: number,
  payload = Buffer.from([0x41, 1, 2, 3]),
  marker = false
): Buffer {
  const b = Buffer.alloc(12 + payload.length)
  b[0] = 0x80
  b[1] = (marker ? 0x80 : 0) | 96
  b.writeUInt16BE(seq & 0xffff, 2)
  b.writeUInt32BE(ts >>> 0, 4)
  b.writeUInt32BE(ssrc >>> 0, 8)
  payload.copy(b, 12)
  return b
}
