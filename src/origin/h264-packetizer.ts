/**
 * H.264 RTP payloads (RFC 6184): single NAL unit packets and FU-A fragments, never STAP-A.
 *
 * Input is one access unit as stored in MP4 (NAL units with a big-endian length prefix of
 * `nalLengthSize` bytes). Output is the list of RTP payloads for that access unit; the RTP
 * marker bit belongs on the last one only (§5.1). Access unit delimiters (type 9) are dropped.
 * With `paramSets` given, SPS/PPS are sent in-band before an IDR access unit that lacks them,
 * so a decoder joining a live channel or after a seek always has them.
 */
export const DEFAULT_MAX_PAYLOAD = 1400
const FU_A = 28

export function splitAvcc (sample: Buffer, nalLengthSize: number): Buffer[] {
  const nals: Buffer[] = []
  let off = 0
  while (off + nalLengthSize <= sample.length) {
    const len = nalLengthSize === 4
      ? sample.readUInt32BE(off)
      : nalLengthSize === 2 ? sample.readUInt16BE(off) : sample[off]!
    off += nalLengthSize
    if (len === 0) continue
    if (off + len > sample.length) {
      throw new RangeError(`NAL length ${len} overruns the sample (${sample.length - off} left)`)
    }
    nals.push(sample.subarray(off, off + len))
    off += len
  }
  return nals
}

/** Payloads for one NAL unit: itself when it fits, else FU-A fragments (§5.8). */
export function packetizeNal (nal: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): Buffer[] {
  if (nal.length <= maxPayload) return [nal]
  const header = nal[0]!
  const indicator = (header & 0xe0) | FU_A
  const type = header & 0x1f
  const out: Buffer[] = []
  const chunk = maxPayload - 2
  for (let off = 1; off < nal.length; off += chunk) {
    const end = Math.min(nal.length, off + chunk)
    const p = Buffer.allocUnsafe(2 + end - off)
    p[0] = indicator
    p[1] = (off === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type
    nal.copy(p, 2, off, end)
    out.push(p)
  }
  return out
}

export function packetizeH264 (
  sample: Buffer, nalLengthSize: number, maxPayload = DEFAULT_MAX_PAYLOAD, paramSets?: Buffer[]
): Buffer[] {
  let nals = splitAvcc(sample, nalLengthSize).filter((n) => (n[0]! & 0x1f) !== 9)
  if (paramSets !== undefined && paramSets.length > 0 && nals.some((n) => (n[0]! & 0x1f) === 5) &&
      !nals.some((n) => (n[0]! & 0x1f) === 7)) { nals = [...paramSets, ...nals] }
  const out: Buffer[] = []
  for (const nal of nals) for (const p of packetizeNal(nal, maxPayload)) out.push(p)
  return out
}
