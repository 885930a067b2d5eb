/**
 * The load generator: many real QuickTime tunnels from one process. Each tunnel writes a GET,
 * reads its HTTP reply head, opens the POST, sends DESCRIBE / SETUP / PLAY base64-encoded one
 * message at a time (as ffmpeg, live555 and GStreamer do), then reads the endless GET body: RTSP
 * replies and `$` interleaved RTP, parsed in place (no per-packet allocation). For every RTP
 * packet it checks the sequence number (gaps = lost) and reads the stamp (stamp.ts) for one-way
 * delay. Keepalive is GET_PARAMETER; PAUSE holds a tunnel with no media.
 */
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { nowNs, readStamp } from './stamp.js'

export interface LoadStats {
  packets: number
  bytes: number
  lost: number
  late: number
  /** Recorded one-way delays in ns (only while `recording`). */
  delays: Float64Array
  delayCount: number
  recording: boolean
  /** A packet whose delay exceeds this (ns) counts as late. */
  lateNs: number
  errors: number
  lastError?: string
  /** Measurement window number (resetCounters increments it; live tunnels restart their lag span). */
  epoch: number
}

export function newStats (lateMs = 50): LoadStats {
  return {
    packets: 0,
    bytes: 0,
    lost: 0,
    late: 0,
    delays: new Float64Array(1 << 16),
    delayCount: 0,
    recording: false,
    lateNs: lateMs * 1e6,
    errors: 0,
    epoch: 0
  }
}

export function resetCounters (s: LoadStats): void {
  s.packets = 0; s.bytes = 0; s.lost = 0; s.late = 0; s.delayCount = 0; s.errors = 0; s.epoch++
}

function record (s: LoadStats, d: number): void {
  if (s.delayCount === s.delays.length) {
    if (s.delays.length >= (1 << 24)) return // 16 M samples: enough for p99.9
    const n = new Float64Array(s.delays.length * 2)
    n.set(s.delays)
    s.delays = n
  }
  s.delays[s.delayCount++] = d
}

export interface TunnelOptions {
  host?: string
  /**
   * Source address of the tunnel's connections (e.g. 127.0.0.2): the scale phase spreads its
   * tunnels over several loopback addresses so no (source, destination) pair runs out of
   * ephemeral ports while thousands of GETs and their closed POSTs (TIME_WAIT) are held.
   */
  localAddress?: string
  port: number
  /** Request path, e.g. /b/2000 (kbit/s). */
  path: string
  stats: LoadStats
  timeoutMs?: number
  /**
   * A live stream (the live scenario, live.ts): SETUP the first video track named by the SDP
   * (Content-Base + a=control) instead of `<path>/track0`, PLAY the Content-Base without a Range,
   * and keep, per measurement window, the arrival time and RTP timestamp (90 kHz) of the first and
   * last video packet, so `lagMs()` tells how far the viewer fell behind the stream's own clock.
   */
  live?: boolean
}

interface Waiter { resolve: (status: number) => void, reject: (e: Error) => void }

const CRLFCRLF = Buffer.from('\r\n\r\n')

/**
 * One read buffer for every tunnel's GET in this process (net.connect `onread`): the parser
 * (#onData) is done with a read before the next one lands, and copies whatever it must keep
 * (a partial message or frame). Node's default allocates a Buffer per read instead; at
 * 1 Gbit/s that is ~125 MB/s of external memory, which made V8 run a full mark-compact about
 * every half second, each stalling this load generator (and so every tunnel's packets, the
 * box's and the direct probes' alike) for 5–15 ms.
 */
const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024)

export class BenchTunnel {
  readonly #o: TunnelOptions
  readonly #cookie = randomBytes(11).toString('hex')
  #get: net.Socket | null = null
  #post: net.Socket | null = null
  #cseq = 0
  #session = ''
  #waiters: Waiter[] = []
  #headDone = false
  #carry: Buffer | null = null
  #skip = 0
  #expectSeq = -1
  #firstRtp: ((t: number) => void) | null = null
  #firstFail: ((e: Error) => void) | null = null
  #closed = false
  #stage = 'connect GET'
  /** Head and body of the last RTSP reply (the DESCRIBE's SDP for a live tunnel). */
  #lastBody = ''
  #lastHead = ''
  #epoch = -1
  #spanFirstNs = 0
  #spanFirstTs = 0
  #spanLastNs = 0
  #spanLastTs = 0
  #spanPackets = 0
  /** ns from the GET write to the first RTP byte. */
  setupNs = -1

  constructor (o: TunnelOptions) { this.#o = o }

  get closed (): boolean { return this.#closed }

  /** GET → POST → DESCRIBE → SETUP → PLAY, resolves at the first RTP byte (or after PLAY when `paused`). */
  async open (opts: { play?: boolean } = {}): Promise<void> {
    const host = this.#o.host ?? '127.0.0.1'
    const timeout = this.#o.timeoutMs ?? 15_000
    const timer = setTimeout(() => this.#fail(new Error(`tunnel setup timed out (${this.#stage})`)), timeout)
    try {
      const get = await dial(this.#o.port, host, this.#o.localAddress, n => {
        this.#onData(READ_BUFFER.subarray(0, n))
      })
      this.#get = get
      get.on('close', () => this.#fail(new Error('GET closed')))
      const t0 = nowNs()
      const first = new Promise<number>((resolve, reject) => { this.#firstRtp = resolve; this.#firstFail = reject })
      first.catch(() => {})
      get.write(`GET ${this.#o.path} HTTP/1.0\r\nx-sessioncookie: ${this.#cookie}\r\nAccept: ` +
        'application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: ' +
        'tunnelgate-bench\r\n\r\n')
      this.#stage = 'POST'
      await this.#openPost()
      this.#stage = 'DESCRIBE'
      const url = `rtsp://127.0.0.1:${this.#o.port}${this.#o.path}`
      await this.#expect200(this.request('DESCRIBE', url, ['Accept: application/sdp']))
      let trackUrl = `${url}/track0`
      let playUrl = url
      if (this.#o.live === true) {
        const base = /\r\ncontent-base:\s*(\S+)/i.exec(this.#lastHead)?.[1] ?? `${url}/`
        trackUrl = firstVideoControl(this.#lastBody, base)
        playUrl = base
      }
      this.#stage = 'SETUP'
      await this.#expect200(this.request('SETUP', trackUrl, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']))
      if (opts.play === false) return
      this.#stage = 'PLAY'
      await this.#expect200(this.request('PLAY', playUrl, this.#o.live === true ? [] : ['Range: npt=0.000-']))
      this.#stage = 'first RTP'
      const t1 = await first
      this.setupNs = t1 - t0
    } finally { clearTimeout(timer) }
  }

  async #openPost (): Promise<void> {
    const post = await dial(this.#o.port, this.#o.host ?? '127.0.0.1', this.#o.localAddress)
    if (this.#closed) { post.destroy(); throw new Error('tunnel closed') }
    this.#post = post
    post.on('close', () => { if (this.#post === post) this.#post = null })
    post.write(`POST ${this.#o.path} HTTP/1.0\r\nx-sessioncookie: ${this.#cookie}\r\nContent-Type: ` +
      'application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nContent-Length: ' +
      '32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\nUser-Agent: tunnelgate-bench\r\n\r\n')
  }

  /** Close the POST leg (QuickTime does after PLAY); the next request opens a new one. */
  closePost (): void {
    const p = this.#post
    this.#post = null
    p?.end()
  }

  async #expect200 (p: Promise<number>): Promise<void> {
    const status = await p
    if (status !== 200) throw new Error(`RTSP ${status}`)
  }

  /** Send one request on the POST (base64, one message per string); resolves with the status. */
  async request (method: string, url: string, headers: string[] = []): Promise<number> {
    if (this.#closed) throw new Error('tunnel closed')
    if (this.#post === null) await this.#openPost()
    if (this.#post === null) throw new Error('no POST leg')
    const lines = [`${method} ${url} RTSP/1.0`, `CSeq: ${++this.#cseq}`, 'User-Agent: tunnelgate-bench', ...headers]
    if (this.#session !== '') lines.push(`Session: ${this.#session}`)
    this.#post.write(Buffer.from(lines.join('\r\n') + '\r\n\r\n').toString('base64'))
    return new Promise((resolve, reject) => { this.#waiters.push({ resolve, reject }) })
  }

  keepalive (): Promise<number> {
    return this.request('GET_PARAMETER', `rtsp://127.0.0.1:${this.#o.port}${this.#o.path}`)
  }

  /**
   * Live tunnels: ms this viewer fell behind the stream's clock during the current measurement
   * window (arrival span of its video packets minus their RTP timestamp span at 90 kHz); null when
   * it got fewer than two video packets in the window.
   */
  lagMs (): number | null {
    if (this.#epoch !== this.#o.stats.epoch || this.#spanPackets < 2) return null
    return (this.#spanLastNs - this.#spanFirstNs) / 1e6 - ((this.#spanLastTs - this.#spanFirstTs) >>> 0) / 90
  }

  /** Video packets this tunnel received in the current measurement window. */
  get windowPackets (): number { return this.#epoch === this.#o.stats.epoch ? this.#spanPackets : 0 }
  pause (): Promise<number> { return this.request('PAUSE', `rtsp://127.0.0.1:${this.#o.port}${this.#o.path}`) }

  close (): void {
    this.#firstFail?.(new Error('closed'))
    this.#firstFail = null
    if (this.#closed) return
    this.#closed = true
    this.#get?.destroy()
    this.#post?.destroy()
    for (const w of this.#waiters) w.reject(new Error('closed'))
    this.#waiters = []
  }

  #fail (e: Error): void {
    this.#firstFail?.(e)
    this.#firstFail = null
    if (this.#closed) return
    this.#o.stats.errors++
    this.#o.stats.lastError = e.message
    for (const w of this.#waiters) w.reject(e)
    this.#waiters = []
    this.close()
  }

  #onData (chunk: Buffer): void {
    let buf = chunk
    let off = 0
    if (this.#skip > 0) {
      const k = Math.min(this.#skip, buf.length)
      this.#skip -= k
      off = k
      if (off === buf.length) return
    }
    if (this.#carry !== null) {
      buf = Buffer.concat([this.#carry, off === 0 ? buf : buf.subarray(off)])
      off = 0
      this.#carry = null
    }
    if (!this.#headDone) {
      const e = buf.indexOf(CRLFCRLF, off)
      if (e === -1) { this.#carry = Buffer.from(buf.subarray(off)); return }
      if (!buf.toString('latin1', off, off + 12).startsWith('HTTP/1.0 200')) {
        this.#fail(new Error(`GET refused: ${buf.toString('latin1', off, Math.min(e, off + 60))}`))
        return
      }
      this.#headDone = true
      off = e + 4
    }
    const s = this.#o.stats
    let now = -1
    const len = buf.length
    while (off < len) {
      const b = buf[off]!
      if (b === 0x24) {
        if (len - off < 4) break
        const plen = (buf[off + 2]! << 8) | buf[off + 3]!
        if (len - off < Math.min(28, 4 + plen)) break
        if ((buf[off + 1]! & 1) === 0) {
          if (this.#firstRtp !== null) { this.#firstRtp(nowNs()); this.#firstRtp = null; this.#firstFail = null }
          const seq = (buf[off + 6]! << 8) | buf[off + 7]!
          if (this.#expectSeq >= 0 && seq !== this.#expectSeq) {
            const gap = (seq - this.#expectSeq) & 0xffff
            if (gap < 0x8000) s.lost += gap
          }
          this.#expectSeq = (seq + 1) & 0xffff
          s.packets++
          s.bytes += plen + 4
          if (this.#o.live === true) {
            if (now < 0) now = nowNs()
            const ts = ((buf[off + 8]! << 24) | (buf[off + 9]! << 16) | (buf[off + 10]! << 8) | buf[off + 11]!) >>> 0
            if (this.#epoch !== s.epoch) {
              this.#epoch = s.epoch
              this.#spanPackets = 0
              this.#spanFirstNs = now
              this.#spanFirstTs = ts
            }
            this.#spanPackets++
            this.#spanLastNs = now
            this.#spanLastTs = ts
          }
          const st = readStamp(buf, off + 4, plen)
          if (st >= 0) {
            if (now < 0) now = nowNs()
            const d = now - st
            if (d > s.lateNs) s.late++
            if (s.recording) record(s, d)
          }
        }
        const end = off + 4 + plen
        if (end > len) { this.#skip = end - len; return }
        off = end
        continue
      }
      if (b === 0x0d || b === 0x0a) { off++; continue }
      // An RTSP message (a reply, or a server request).
      const e = buf.indexOf(CRLFCRLF, off)
      if (e === -1) break
      const head = buf.toString('latin1', off, e)
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      const end = e + 4 + (m !== null ? Number(m[1]) : 0)
      if (end > len) break
      off = end
      if (head.startsWith('RTSP/')) {
        this.#lastHead = head
        this.#lastBody = buf.toString('latin1', e + 4, end)
        const sm = /\r\nsession:\s*([^;\r\n]+)/i.exec(head)
        if (sm !== null) this.#session = sm[1]!.trim()
        const w = this.#waiters.shift()
        w?.resolve(Number(head.slice(9, 12)))
      }
    }
    if (off < len) this.#carry = Buffer.from(buf.subarray(off))
  }
}

/** The SETUP URL of the first video media of an SDP (its a=control resolved against `base`). */
export function firstVideoControl (sdp: string, base: string): string {
  const medias = sdp.split(/\r?\n(?=m=)/).slice(1)
  const video = medias.find(m => m.startsWith('m=video')) ?? medias[0]
  const control = video === undefined ? undefined : /^a=control:\s*(\S+)/m.exec(video)?.[1]
  if (control === undefined || control === '*') return base
  if (/^rtsps?:\/\//i.test(control)) return control
  return (base.endsWith('/') ? base : `${base}/`) + control
}

/** Connect; with `onRead`, reads land in READ_BUFFER (its first n bytes) instead of 'data' events. */
function dial (port: number, host: string, localAddress?: string, onRead?: (n: number) => void): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({
      port,
      host,
      noDelay: true,
      ...(localAddress !== undefined ? { localAddress } : {}),
      ...(onRead !== undefined
        ? {
            onread: {
              buffer: READ_BUFFER,
              callback: (n: number) => {
                onRead(n)
                return true
              }
            }
          }
        : {})
    })
    s.once('connect', () => { s.off('error', reject); s.on('error', () => {}); resolve(s) })
    s.once('error', reject)
  })
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function pool<T> (items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => { while (next < items.length) { const i = next++; await fn(items[i]!, i) } }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

export function percentile (sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

/** p50/p99/p99.9 of the recorded delays (ms). */
export function delayPercentiles (s: LoadStats): { n: number, p50: number, p99: number, p999: number } {
  const a = s.delays.slice(0, s.delayCount).sort()
  return { n: a.length, p50: percentile(a, 50) / 1e6, p99: percentile(a, 99) / 1e6, p999: percentile(a, 99.9) / 1e6 }
}
