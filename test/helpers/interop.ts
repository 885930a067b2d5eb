/**
 * Shared pieces of the interop tests (test/interop/): a gateway in front of real backends,
 * metric reads, the count of TCP connections established to a backend port (from
 * /proc/net/tcp), a poller, ffmpeg output parsing, and a raw QuickTime-tunnel RTSP client
 * (GET for server→client, POST with one base64 block per RTSP message for client→server).
 */
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { buildConfig } from '../../src/config/config.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { RtspDemuxer } from '../../src/tunnel/codec/demux.js'
import { getHeader, type RtspResponse } from '../../src/tunnel/codec/rtsp-message.js'

/** A gateway on 127.0.0.1:0 in front of the given rtsp:// backends (logging silent). */
export async function startTestGateway (backends: Array<string | { name: string, url: string }>): Promise<Gateway> {
  const config = buildConfig([{ port: 0, host: '127.0.0.1', logLevel: 'silent', workers: 0, ops: { port: 0 }, backends }])
  return await startGateway(config)
}

/** Sum of a metric's values whose labels match `labels` (all of them, when omitted). */
export async function metricValue (gw: Gateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric(name)
  if (m === undefined) throw new Error(`no metric ${name}`)
  const data = await m.get()
  let sum = 0
  for (const v of data.values) {
    const l = v.labels as Record<string, string | number | undefined>
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) sum += v.value
  }
  return sum
}

/** Per-label-value map of a metric (e.g. backend name → choices). */
export async function metricByLabel (gw: Gateway, name: string, label: string): Promise<Record<string, number>> {
  const m = gw.metrics.registry.getSingleMetric(name)
  if (m === undefined) throw new Error(`no metric ${name}`)
  const out: Record<string, number> = {}
  for (const v of (await m.get()).values) {
    const key = String((v.labels as Record<string, string | number | undefined>)[label])
    out[key] = (out[key] ?? 0) + v.value
  }
  return out
}

/**
 * TCP connections in state ESTABLISHED whose local port is `port` (server side of connections
 * accepted by a listener on that port), from /proc/net/tcp and /proc/net/tcp6.
 */
export function establishedTo (port: number): number {
  let n = 0
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try { text = readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 4) continue
      const local = f[1]!
      const state = f[3]!
      if (state !== '01') continue
      const lport = parseInt(local.slice(local.lastIndexOf(':') + 1), 16)
      if (lport === port) n++
    }
  }
  return n
}

/** Poll `probe` until `ok(value)` or the timeout; returns the last value. */
export async function waitFor<T> (probe: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 8000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (ok(v) || Date.now() > deadline) return v
    await delay(stepMs)
  }
}

export function delay (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

export interface QuiesceState { tunnels: number, backendSessions: number, backendConnections: number }

/** Wait until the gateway has no tunnel, no backend session and the backend no connection. */
export async function waitQuiet (gw: Gateway, backendPorts: number[], timeoutMs = 8000): Promise<QuiesceState> {
  return await waitFor(async () => ({
    tunnels: await metricValue(gw, 'tunnelgate_tunnels_active'),
    backendSessions: await metricValue(gw, 'tunnelgate_backend_sessions'),
    backendConnections: backendPorts.reduce((s, p) => s + establishedTo(p), 0)
  }), s => s.tunnels === 0 && s.backendSessions === 0 && s.backendConnections === 0, timeoutMs)
}

/** `-f framecrc` output → frames per stream index, and each stream's first pts (in its time base). */
export function parseFramecrc (text: string): { frames: Map<number, number>, firstPts: Map<number, number>, timebase: Map<number, number> } {
  const frames = new Map<number, number>()
  const firstPts = new Map<number, number>()
  const timebase = new Map<number, number>()
  for (const line of text.split('\n')) {
    const tb = /^#tb (\d+): (\d+)\/(\d+)/.exec(line)
    if (tb !== null) { timebase.set(Number(tb[1]), Number(tb[2]) / Number(tb[3])); continue }
    const m = /^\s*(\d+),\s*(-?\d+),\s*(-?\d+),/.exec(line)
    if (m === null) continue
    const idx = Number(m[1])
    frames.set(idx, (frames.get(idx) ?? 0) + 1)
    if (!firstPts.has(idx)) firstPts.set(idx, Number(m[3]))
  }
  return { frames, firstPts, timebase }
}

export interface TunnelReply extends RtspResponse {
  header (name: string): string | undefined
}

/**
 * A raw RTSP-over-HTTP (QuickTime tunnel) client: one GET (server→client, raw RTSP and `$`
 * frames after an HTTP 200 head) and one POST kept open, carrying each RTSP request as its own
 * base64 block.
 */
export class TunnelClient {
  readonly cookie = randomBytes(11).toString('hex')
  onFrame: ((channel: number, payload: Buffer) => void) | undefined
  session: string | undefined
  readonly #get: Socket
  readonly #post: Socket
  readonly #demux = new RtspDemuxer()
  readonly #pending = new Map<string, (r: TunnelReply) => void>()
  #cseq = 0
  #head = Buffer.alloc(0)
  #gotHead = false
  #getStatus = 0

  private constructor (get: Socket, post: Socket) {
    this.#get = get
    this.#post = post
    get.on('data', (d: Buffer) => this.#onGet(d))
    get.on('error', () => {})
    post.on('error', () => {})
  }

  get getStatus (): number { return this.#getStatus }

  static async open (port: number, path: string, host = '127.0.0.1'): Promise<TunnelClient> {
    const open = (): Promise<Socket> => new Promise((resolve, reject) => {
      const s = connect(port, host)
      s.once('connect', () => { s.off('error', reject); s.setNoDelay(true); resolve(s) })
      s.once('error', reject)
    })
    const get = await open()
    const c = new TunnelClient(get, await open())
    const headReady = new Promise<void>((resolve, reject) => {
      c.#headWaiter = resolve
      get.once('close', () => reject(new Error(`tunnel GET closed before its reply head (status ${c.#getStatus})`)))
    })
    get.write(`GET ${path} HTTP/1.0\r\nUser-Agent: tunnelgate-interop\r\nx-sessioncookie: ${c.cookie}\r\n` +
      'Accept: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n')
    await headReady
    if (c.#getStatus !== 200) throw new Error(`tunnel GET answered HTTP ${c.#getStatus}`)
    c.#post.write(`POST ${path} HTTP/1.0\r\nUser-Agent: tunnelgate-interop\r\nx-sessioncookie: ${c.cookie}\r\n` +
      'Content-Type: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n' +
      'Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n')
    return c
  }

  #headWaiter: (() => void) | undefined

  #onGet (d: Buffer): void {
    if (!this.#gotHead) {
      this.#head = Buffer.concat([this.#head, d])
      const end = this.#head.indexOf('\r\n\r\n')
      if (end === -1) return
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.#head.toString('latin1', 0, end))
      this.#getStatus = m === null ? 0 : Number(m[1])
      this.#gotHead = true
      const rest = this.#head.subarray(end + 4)
      this.#head = Buffer.alloc(0)
      this.#headWaiter?.()
      if (rest.length === 0) return
      d = rest
    }
    for (const u of this.#demux.push(d)) {
      if (u.kind === 'frame') this.onFrame?.(u.channel, Buffer.from(u.payload))
      else if (u.kind === 'response') {
        const key = getHeader(u, 'cseq') ?? ''
        const reply: TunnelReply = { ...u, header: (n: string) => getHeader(u, n) }
        const p = this.#pending.get(key)
        if (p !== undefined) { this.#pending.delete(key); p(reply) }
      }
    }
  }

  request (method: string, url: string, headers: Record<string, string> = {}, timeoutMs = 10000): Promise<TunnelReply> {
    const cseq = String(++this.#cseq)
    let head = `${method} ${url} RTSP/1.0\r\nCSeq: ${cseq}\r\nUser-Agent: tunnelgate-interop\r\n`
    if (this.session !== undefined && method !== 'DESCRIBE' && method !== 'OPTIONS') head += `Session: ${this.session}\r\n`
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
    head += '\r\n'
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(cseq); reject(new Error(`${method} (CSeq ${cseq}) not answered within ${timeoutMs} ms`)) }, timeoutMs)
      this.#pending.set(cseq, r => {
        clearTimeout(timer)
        if (method === 'SETUP' && r.status === 200) this.session = r.header('session')?.split(';')[0]?.trim()
        resolve(r)
      })
      this.#post.write(Buffer.from(head).toString('base64'))
    })
  }

  close (): void {
    this.#post.destroy()
    this.#get.destroy()
  }
}

/** Resolve an SDP a=control against the Content-Base (or the request URL). */
export function controlUrl (base: string, control: string): string {
  if (/^rtsp:\/\//i.test(control)) return control
  return base.endsWith('/') ? base + control : `${base}/${control}`
}

/** The a=control of each m= section of an SDP. */
export function sdpMediaControls (sdp: string): Array<{ media: string, control: string }> {
  const out: Array<{ media: string, control: string }> = []
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) out.push({ media: line.slice(2).split(' ')[0]!, control: '' })
    else if (line.startsWith('a=control:') && out.length > 0) out[out.length - 1]!.control = line.slice('a=control:'.length).trim()
  }
  return out
}
