/**
 * Micro-benchmarks of the per-packet and per-message hot path, each timed against a baseline
 * measured in the same run and the same process (ratios, never lone times):
 *
 *   $ demux + write path   ProxySession#backendData minus the socket: a frame held from the last
 *                          read completed from the head of this one (RtspDemuxer.frameRemainder),
 *                          the allocation-free walk of leading whole frames (leadingFrames), then
 *                          RtspDemuxer.push + run coalescing for the rest, on 64 KiB reads that
 *                          split frames and on small reads of 2 frames; also without completing
 *                          the held frame (the demuxer copies the whole read behind it) and the
 *                          demuxer path alone (before either fix)
 *                          baseline: a bare loop that walks the `$` headers and slices the run
 *   base64 decode          Base64StreamDecoder.push over a POST body of per-message base64
 *                          baseline: Buffer.from(text, 'base64') of the same bytes (native)
 *   header rewrite         demux one SETUP request, rewrite its URL with UrlMapper, serialize
 *                          baseline: String.replace of the URL in the raw text + Buffer.from
 *   per-read byte counting what ProxySession and the pool count per backend read (bytes by direction,
 *                          bytes by backend) with the gateway's counters (tunnelgate/metrics)
 *                          baseline: the same increments on plain prom-client counters (before)
 */
import {
  Base64StreamDecoder, leadingFrames, rewriteRequestUrls, RtspDemuxer, serializeMessage, UrlMapper,
  type InterleavedFrame, type RtspRequest, type RtspUnit
} from 'tunnelgate/codec'
import { createMetrics } from 'tunnelgate/metrics'
import { Counter, Registry } from 'prom-client'

export interface MicroResult {
  name: string
  unit: string
  nsPerOp: number
  baseline: string
  baselineNsPerOp: number
  /** nsPerOp / baselineNsPerOp. */
  ratio: number
}

let sink = 0

/** ns per op of `fn` (which does `ops` ops per call), over about `ms` ms after a warm-up. */
function time (fn: () => void, ops: number, ms: number): number {
  const warm = performance.now() + Math.max(5, ms / 4)
  while (performance.now() < warm) fn()
  let calls = 0
  const t0 = performance.now()
  const end = t0 + ms
  do { fn(); calls++ } while (performance.now() < end)
  return ((performance.now() - t0) * 1e6) / (calls * ops)
}

/** The result of interleaved rounds (ns per op each): the median of the subject's and of the baseline's. */
export function fromRounds (
  name: string, unit: string, baseline: string, subject: number[], base: number[]
): MicroResult {
  const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!
  const nsPerOp = med(subject)
  const baselineNsPerOp = med(base)
  return { name, unit, nsPerOp, baseline, baselineNsPerOp, ratio: nsPerOp / baselineNsPerOp }
}

/** Median of 3 interleaved rounds of subject and baseline. */
function compare (
  name: string, unit: string, baseline: string, subject: () => void, base: () => void, ops: number, ms: number
): MicroResult {
  const s: number[] = []
  const b: number[] = []
  for (let i = 0; i < 3; i++) { s.push(time(subject, ops, ms / 3)); b.push(time(base, ops, ms / 3)) }
  return fromRounds(name, unit, baseline, s, b)
}

/** A backend byte stream of `n` RTP frames of `size` bytes (header included), cut into reads. */
function frames (n: number, size: number): Buffer {
  const one = Buffer.alloc(size, 0xa5)
  one[0] = 0x24; one[1] = 0; one.writeUInt16BE(size - 4, 2); one[4] = 0x80
  return Buffer.concat(Array.from({ length: n }, () => one))
}

function cut (stream: Buffer, readBytes: number): Buffer[] {
  const out: Buffer[] = []
  for (let o = 0; o < stream.length; o += readBytes) out.push(Buffer.from(stream.subarray(o, o + readBytes)))
  return out
}

/**
 * What ProxySession#backendData does with a read (complete a held frame from the head of the read,
 * fast path, demux, coalesce runs), minus the socket. `write` gets the pieces of one client write
 * (two when the completed frame and the whole frames after it go out corked together).
 */
export function backendPath (
  demux: RtspDemuxer, chunk: Buffer, write: (b: Buffer, b2?: Buffer) => void, carry = true,
  other?: (u: RtspUnit) => void
): void {
  let carried: Buffer | null = null
  const need = carry ? demux.frameRemainder : 0
  if (need > 0 && need < chunk.length) {
    carried = (demux.push(chunk.subarray(0, need))[0] as InterleavedFrame).raw
    chunk = chunk.subarray(need)
  }
  if (demux.buffered === 0) {
    const lead = leadingFrames(chunk)
    if (carried !== null) {
      if (lead.frames === 0) write(carried)
      else write(carried, lead.bytes === chunk.length ? chunk : chunk.subarray(0, lead.bytes))
    } else if (lead.frames > 0) { write(lead.bytes === chunk.length ? chunk : chunk.subarray(0, lead.bytes)) }
    if (lead.bytes === chunk.length) return
    chunk = chunk.subarray(lead.bytes)
  }
  demuxPath(demux, chunk, write, other)
}

/** The demuxer path alone (all ProxySession did before the fast path). */
export function demuxPath (
  demux: RtspDemuxer, chunk: Buffer, write: (b: Buffer) => void, other?: (u: RtspUnit) => void
): void {
  const units = demux.push(chunk)
  let runStart = -1
  let runEnd = -1
  let runBuf: Buffer | null = null
  const flushRun = (): void => {
    if (runBuf !== null) {
      write(
        runBuf.byteOffset === runStart && runBuf.length === runEnd - runStart
          ? runBuf
          : Buffer.from(runBuf.buffer, runStart, runEnd - runStart)
      )
    }
    runBuf = null
  }
  for (const u of units) {
    if (u.kind === 'frame') {
      if (runBuf !== null && u.raw.buffer === (runBuf as Buffer).buffer && u.raw.byteOffset === runEnd) {
        runEnd += u.raw.length
        continue
      }
      flushRun()
      runBuf = u.raw
      runStart = u.raw.byteOffset
      runEnd = runStart + u.raw.length
      continue
    }
    flushRun()
    other?.(u)
  }
  flushRun()
}

/** Baseline: walk `$` headers, keep a partial tail, hand out the complete run as one slice. */
class BareScan {
  #tail: Buffer | null = null
  push (chunk: Buffer, write: (b: Buffer) => void): void {
    let buf = chunk
    if (this.#tail !== null) { buf = Buffer.concat([this.#tail, chunk]); this.#tail = null }
    let off = 0
    while (off + 4 <= buf.length) {
      const end = off + 4 + buf.readUInt16BE(off + 2)
      if (end > buf.length) break
      off = end
    }
    if (off > 0) write(buf.subarray(0, off))
    if (off < buf.length) this.#tail = buf.subarray(off)
  }
}

export function runMicro (ms: number): MicroResult[] {
  const out: MicroResult[] = []
  const write = (b: Buffer, b2?: Buffer): void => { sink += b.length + (b2?.length ?? 0) }
  for (const [label, readBytes, frameSize] of [['64 KiB reads', 65536, 1404], ['2-frame reads', 2808, 1404]] as const) {
    const stream = frames(Math.ceil((1 << 20) / frameSize), frameSize)
    const reads = cut(stream, readBytes)
    const packets = Math.floor(stream.length / frameSize)
    const bare = (): void => {
      const s = new BareScan()
      for (const r of reads) s.push(r, write)
    }
    out.push(compare(`$ demux + write path (${label})`, 'packet', 'bare header walk', () => {
      const d = new RtspDemuxer()
      for (const r of reads) backendPath(d, r, write)
    }, bare, packets, ms))
    out.push(compare('… without completing a held frame from the read\'s head ' +
      `(${label})`, 'packet', 'bare header walk', () => {
      const d = new RtspDemuxer()
      for (const r of reads) backendPath(d, r, write, false)
    }, bare, packets, ms))
    out.push(compare(`… demuxer alone, without the fast path (${label})`, 'packet', 'bare header walk', () => {
      const d = new RtspDemuxer()
      for (const r of reads) demuxPath(d, r, write)
    }, bare, packets, ms))
  }
  // base64: a POST body of 200 requests (as the bench client and ffmpeg send them: one padded string each).
  const req = 'GET_PARAMETER rtsp://gw.example.net:80/live/cam1 RTSP/1.0\r\nCSeq: 17\r\nSession: ' +
    '12345678\r\nUser-Agent: Lavf59.27.100\r\n\r\n'
  const enc = Buffer.from(req).toString('base64')
  const text = enc.repeat(200)
  const body = Buffer.from(text, 'latin1')
  const pieces = cut(body, 1460)
  out.push(compare('base64 decode (POST body, 1460-byte reads)', 'KiB', 'Buffer.from(base64) per message', () => {
    const d = new Base64StreamDecoder()
    for (const p of pieces) sink += d.push(p).data.length
  }, () => {
    // Native decode stops at the first '=', so the baseline decodes each padded message separately.
    for (let o = 0; o < text.length; o += enc.length) {
      sink += Buffer.from(text.slice(o, o + enc.length), 'base64').length
    }
  }, body.length / 1024, ms))
  // header rewrite: one SETUP request, public → backend URL.
  const setup = Buffer.from('SETUP rtsp://gw.example.net/live/cam1/trackID=1 RTSP/1.0\r\nCSeq: 3\r\nTransport: ' +
    'RTP/AVP/TCP;unicast;interleaved=0-1\r\nUser-Agent: Lavf59.27.100\r\n\r\n')
  const mapper = new UrlMapper({ publicBase: 'rtsp://gw.example.net', backendBase: 'rtsp://10.0.0.5:8554' })
  const setupText = setup.toString('latin1')
  out.push(compare('header rewrite (demux + URL map + serialize a ' +
    'SETUP)', 'message', 'String.replace + Buffer.from', () => {
    const d = new RtspDemuxer()
    const u = d.push(setup)[0] as RtspRequest
    rewriteRequestUrls(u, url => mapper.toBackend(url))
    sink += serializeMessage(u).length
  }, () => {
    sink += Buffer.from(setupText.replace('rtsp://gw.example.net/', 'rtsp://10.0.0.5:8554/'), 'latin1').length
  }, 1, ms))
  // per-read counting: two labelled increments per backend read (direction, backend).
  const m = createMetrics({ defaultMetrics: false })
  const plain = new Registry()
  const plainBytes = new Counter({ name: 'b', help: 'b', labelNames: ['direction'], registers: [plain] })
  const plainBackend = new Counter({ name: 'bb', help: 'bb', labelNames: ['backend'], registers: [plain] })
  out.push(compare('per-read byte counting (2 labelled counters)', 'read', 'plain prom-client inc (before)', () => {
    for (let i = 0; i < 1000; i++) {
      m.backendBytes.inc({ backend: 'origin' }, 2808)
      m.bytesTotal.inc({ direction: 'backend_to_client' }, 2808)
    }
  }, () => {
    for (let i = 0; i < 1000; i++) {
      plainBackend.inc({ backend: 'origin' }, 2808)
      plainBytes.inc({ direction: 'backend_to_client' }, 2808)
    }
  }, 1000, ms))
  if (sink === -1) console.log(sink)
  return out
}
