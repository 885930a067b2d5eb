/**
 * RTCP packets the origin sends (RFC 3550 §6.4.1, §6.5, §6.6): a compound Sender Report
 * (SR with no report blocks + SDES CNAME) and BYE. Pure builders.
 */
const NTP_EPOCH_OFFSET = 2208988800

export interface SenderReport {
  ssrc: number
  /** Wall-clock time of the report, ms since the Unix epoch. */
  wallMs: number
  /** RTP timestamp corresponding to wallMs. */
  rtpTimestamp: number
  packetCount: number
  octetCount: number
  cname: string
}

export function ntpFromMs (wallMs: number): { sec: number, frac: number } {
  const sec = Math.floor(wallMs / 1000)
  const frac = Math.floor(((wallMs - sec * 1000) / 1000) * 0x100000000)
  return { sec: (sec + NTP_EPOCH_OFFSET) >>> 0, frac: Math.min(frac, 0xffffffff) >>> 0 }
}

export function buildSenderReport (r: SenderReport): Buffer {
  const sr = Buffer.alloc(28)
  sr[0] = 0x80
  sr[1] = 200
  sr.writeUInt16BE(6, 2)
  sr.writeUInt32BE(r.ssrc >>> 0, 4)
  const ntp = ntpFromMs(r.wallMs)
  sr.writeUInt32BE(ntp.sec, 8)
  sr.writeUInt32BE(ntp.frac, 12)
  sr.writeUInt32BE(r.rtpTimestamp >>> 0, 16)
  sr.writeUInt32BE(r.packetCount >>> 0, 20)
  sr.writeUInt32BE(r.octetCount >>> 0, 24)
  return Buffer.concat([sr, buildSdes(r.ssrc, r.cname)])
}

function buildSdes (ssrc: number, cname: string): Buffer {
  const name = Buffer.from(cname, 'utf8').subarray(0, 255)
  const itemLen = 2 + name.length + 1 // CNAME item + END
  const chunkLen = 4 + itemLen
  const padded = Math.ceil(chunkLen / 4) * 4
  const out = Buffer.alloc(4 + padded)
  out[0] = 0x81
  out[1] = 202
  out.writeUInt16BE(padded / 4, 2)
  out.writeUInt32BE(ssrc >>> 0, 4)
  out[8] = 1
  out[9] = name.length
  name.copy(out, 10)
  return out
}

export function buildBye (ssrc: number): Buffer {
  const out = Buffer.alloc(8)
  out[0] = 0x81
  out[1] = 203
  out.writeUInt16BE(1, 2)
  out.writeUInt32BE(ssrc >>> 0, 4)
  return out
}
