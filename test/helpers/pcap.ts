/**
 * Test helper: read a capture file and reassemble its TCP byte streams. Pure (Buffer in, data out).
 *
 * Formats: pcapng (SHB/IDB/EPB/SPB, either byte order — what our captures use, linktype 1 on `lo`)
 * and classic libpcap (µs or ns magic, either byte order). Link types: 0 NULL/loopback,
 * 1 Ethernet (+802.1Q), 12/14/101 raw IP, 113 Linux cooked (SLL), 276 SLL2. IPv4 and IPv6
 * (no extension headers). Non-TCP packets and IP fragments are ignored.
 *
 * Reassembly: per connection (4-tuple), per direction, segments ordered by sequence number
 * relative to the SYN (or to the lowest seen when the SYN is missing); retransmissions and
 * overlaps are deduplicated; holes are counted in `gaps` (bytes after a hole are kept).
 */
import { readFileSync } from 'node:fs'

export interface TcpSegment {
  /** Packet index in the file (arrival order). */
  index: number
  /** Capture time in seconds (float), when the format gives one. */
  time: number
  src: string
  sport: number
  dst: string
  dport: number
  seq: number
  syn: boolean
  ack: boolean
  fin: boolean
  rst: boolean
  payload: Buffer
}

export interface TcpEndpoint { addr: string, port: number }

export interface TcpConnection {
  /** The side that sent the first SYN (or the first packet's sender). */
  client: TcpEndpoint
  server: TcpEndpoint
  /** Index of the first packet of this connection. */
  firstIndex: number
  clientToServer: Buffer
  serverToClient: Buffer
  /** Payload-carrying segments per direction (before dedupe), for information. */
  clientSegments: number
  serverSegments: number
  /** Holes found while reassembling (0 for a clean capture). */
  gaps: number
}

// ------------------------------------------------------------------------------------------
// File formats → link-layer frames

interface Frame { linktype: number, data: Buffer, time: number }

export function readCaptureFrames (file: Buffer): Frame[] {
  if (file.length < 24) throw new Error('capture too short')
  const magicLE = file.readUInt32LE(0)
  if (magicLE === 0x0a0d0d0a) return readPcapng(file)
  const classic: Record<number, { le: boolean, nano: boolean }> = {
    0xa1b2c3d4: { le: true, nano: false },
    0xd4c3b2a1: { le: false, nano: false },
    0xa1b23c4d: { le: true, nano: true },
    0x4d3cb2a1: { le: false, nano: true }
  }
  const kind = classic[magicLE]
  if (kind === undefined) throw new Error(`unknown capture magic 0x${magicLE.toString(16)}`)
  const u32 = (o: number): number => kind.le ? file.readUInt32LE(o) : file.readUInt32BE(o)
  const linktype = u32(20) & 0x0fffffff
  const frames: Frame[] = []
  let off = 24
  while (off + 16 <= file.length) {
    const sec = u32(off)
    const frac = u32(off + 4)
    const incl = u32(off + 8)
    const start = off + 16
    if (start + incl > file.length) break
    frames.push({ linktype, data: file.subarray(start, start + incl), time: sec + frac / (kind.nano ? 1e9 : 1e6) })
    off = start + incl
  }
  return frames
}

function readPcapng (file: Buffer): Frame[] {
  const frames: Frame[] = []
  let le = true
  let interfaces: Array<{ linktype: number, tsDiv: number }> = []
  let off = 0
  while (off + 12 <= file.length) {
    let type = le ? file.readUInt32LE(off) : file.readUInt32BE(off)
    if (type === 0x0a0d0d0a) {
      const bom = file.readUInt32LE(off + 8)
      le = bom === 0x1a2b3c4d
      interfaces = []
      type = 0x0a0d0d0a
    }
    const u32 = (o: number): number => le ? file.readUInt32LE(o) : file.readUInt32BE(o)
    const u16 = (o: number): number => le ? file.readUInt16LE(o) : file.readUInt16BE(o)
    const len = u32(off + 4)
    if (len < 12 || off + len > file.length) break
    const body = off + 8
    if (type === 1) {
      // IDB: linktype(2) reserved(2) snaplen(4) options
      let tsDiv = 1e6
      let o = body + 8
      const end = off + len - 4
      while (o + 4 <= end) {
        const code = u16(o)
        const olen = u16(o + 2)
        if (code === 0) break
        if (code === 9 && olen >= 1) {
          const v = file[o + 4]!
          tsDiv = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v
        }
        o += 4 + ((olen + 3) & ~3)
      }
      interfaces.push({ linktype: u16(body), tsDiv })
    } else if (type === 6) {
      // EPB: interface(4) tsHigh(4) tsLow(4) captured(4) original(4) data
      const ifc = interfaces[u32(body)]
      const cap = u32(body + 16)
      if (ifc !== undefined) {
        const ts = u32(body + 4) * 2 ** 32 + u32(body + 8)
        frames.push({ linktype: ifc.linktype, data: file.subarray(body + 20, body + 20 + cap), time: ts / ifc.tsDiv })
      }
    } else if (type === 3) {
      // SPB: original length(4) data (interface 0, no timestamp)
      const ifc = interfaces[0]
      if (ifc !== undefined) {
        frames.push({ linktype: ifc.linktype, data: file.subarray(body + 4, off + len - 4), time: 0 })
      }
    }
    off += len
  }
  return frames
}

// ------------------------------------------------------------------------------------------
// Link layer → IP → TCP

function ipPayload (frame: Frame): { version: number, data: Buffer } | null {
  const d = frame.data
  let off: number
  let etherType: number | undefined
  switch (frame.linktype) {
    case 0: off = 4; break // NULL: 4-byte address family in host order
    case 1: {
      etherType = d.readUInt16BE(12)
      off = 14
      while (etherType === 0x8100 || etherType === 0x88a8) { etherType = d.readUInt16BE(off + 2); off += 4 }
      break
    }
    case 12: case 14: case 101: off = 0; break
    case 113: etherType = d.readUInt16BE(14); off = 16; break
    case 276: etherType = d.readUInt16BE(0); off = 20; break
    default: return null
  }
  if (etherType !== undefined && etherType !== 0x0800 && etherType !== 0x86dd) return null
  if (off >= d.length) return null
  const data = d.subarray(off)
  return { version: data[0]! >> 4, data }
}

export function parseTcpSegments (frames: Frame[]): TcpSegment[] {
  const out: TcpSegment[] = []
  frames.forEach((frame, index) => {
    const ip = ipPayload(frame)
    if (ip === null) return
    const p = ip.data
    let src: string, dst: string, tcp: Buffer
    if (ip.version === 4) {
      const ihl = (p[0]! & 0x0f) * 4
      if (p[9] !== 6) return
      const fragOff = p.readUInt16BE(6) & 0x3fff // MF flag + offset
      if (fragOff !== 0) return
      const total = p.readUInt16BE(2)
      src = [...p.subarray(12, 16)].join('.')
      dst = [...p.subarray(16, 20)].join('.')
      tcp = p.subarray(ihl, Math.min(p.length, total))
    } else if (ip.version === 6) {
      if (p[6] !== 6) return
      const plen = p.readUInt16BE(4)
      src = ipv6(p.subarray(8, 24))
      dst = ipv6(p.subarray(24, 40))
      tcp = p.subarray(40, Math.min(p.length, 40 + plen))
    } else {
      return
    }
    if (tcp.length < 20) return
    const flags = tcp[13]!
    const doff = (tcp[12]! >> 4) * 4
    out.push({
      index,
      time: frame.time,
      src,
      sport: tcp.readUInt16BE(0),
      dst,
      dport: tcp.readUInt16BE(2),
      seq: tcp.readUInt32BE(4),
      syn: (flags & 0x02) !== 0,
      ack: (flags & 0x10) !== 0,
      fin: (flags & 0x01) !== 0,
      rst: (flags & 0x04) !== 0,
      payload: tcp.subarray(doff)
    })
  })
  return out
}

function ipv6 (b: Buffer): string {
  const parts: string[] = []
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16))
  return parts.join(':')
}

// ------------------------------------------------------------------------------------------
// Reassembly

interface Direction { isn: number | undefined, segs: Array<{ seq: number, payload: Buffer }>, count: number }

function assemble (dir: Direction): { data: Buffer, gaps: number } {
  if (dir.segs.length === 0) return { data: Buffer.alloc(0), gaps: 0 }
  const base = dir.isn ?? dir.segs.reduce((m, s) => (((s.seq - m) | 0) < 0 ? s.seq : m), dir.segs[0]!.seq)
  const rel = dir.segs.map((s) => ({ off: (s.seq - base) >>> 0, payload: s.payload }))
  rel.sort((a, b) => a.off - b.off)
  const parts: Buffer[] = []
  let next = 0
  let gaps = 0
  for (const s of rel) {
    const end = s.off + s.payload.length
    if (end <= next) continue // retransmission
    if (s.off > next) { gaps++; next = s.off }
    parts.push(s.payload.subarray(next - s.off))
    next = end
  }
  return { data: Buffer.concat(parts), gaps }
}

export function reassembleTcp (segments: TcpSegment[]): TcpConnection[] {
  interface Conn { a: TcpEndpoint, b: TcpEndpoint, client?: TcpEndpoint, first: number, dirs: Map<string, Direction> }
  const conns = new Map<string, Conn>()
  const ep = (addr: string, port: number): string => `${addr}|${port}`
  for (const s of segments) {
    const x = ep(s.src, s.sport)
    const y = ep(s.dst, s.dport)
    const key = x < y ? `${x}>${y}` : `${y}>${x}`
    let c = conns.get(key)
    // A new SYN on a finished 4-tuple would start a new connection; our captures never reuse ports.
    if (c === undefined) {
      c = { a: { addr: s.src, port: s.sport }, b: { addr: s.dst, port: s.dport }, first: s.index, dirs: new Map() }
      conns.set(key, c)
    }
    if (s.syn && !s.ack) c.client = { addr: s.src, port: s.sport }
    let d = c.dirs.get(x)
    if (d === undefined) { d = { isn: undefined, segs: [], count: 0 }; c.dirs.set(x, d) }
    if (s.syn) d.isn = (s.seq + 1) >>> 0
    if (s.payload.length > 0) {
      d.segs.push({ seq: s.syn ? (s.seq + 1) >>> 0 : s.seq, payload: s.payload })
      d.count++
    }
  }
  const out: TcpConnection[] = []
  for (const c of conns.values()) {
    const client = c.client ?? c.a
    const server = client === c.a || (client.addr === c.a.addr && client.port === c.a.port) ? c.b : c.a
    const empty: Direction = { isn: undefined, segs: [], count: 0 }
    const up = c.dirs.get(ep(client.addr, client.port)) ?? empty
    const down = c.dirs.get(ep(server.addr, server.port)) ?? empty
    const u = assemble(up)
    const dn = assemble(down)
    out.push({
      client,
      server,
      firstIndex: c.first,
      clientToServer: u.data,
      serverToClient: dn.data,
      clientSegments: up.count,
      serverSegments: down.count,
      gaps: u.gaps + dn.gaps
    })
  }
  out.sort((p, q) => p.firstIndex - q.firstIndex)
  return out
}

/** Read a capture file and return its TCP connections, in order of first packet. */
export function loadTcpConnections (path: string): TcpConnection[] {
  return reassembleTcp(parseTcpSegments(readCaptureFrames(readFileSync(path))))
}

/** Payload segments of one direction, in arrival order (for "as sent per TCP segment" tests). */
export function directionSegments (segments: TcpSegment[], from: TcpEndpoint, to: TcpEndpoint): Buffer[] {
  return segments
    .filter(
      (s) =>
        s.src === from.addr && s.sport === from.port && s.dst === to.addr && s.dport === to.port && s.payload.length > 0
    )
    .map((s) => s.payload)
}
