/**
 * A raw RTSP-over-WebSocket client for tests, on the `ws` package (an independent RFC 6455
 * implementation): speaks RTSP/1.0 in binary messages the way media-stream-library does (one
 * request per message, subprotocol `binary`), keeps every message it receives (to check that
 * each response arrives alone in its message), matches replies by CSeq and counts `$` frames.
 */
import WebSocket from 'ws'
import { RtspDemuxer } from '../../src/tunnel/codec/demux.js'
import { getHeader, type RtspResponse } from '../../src/tunnel/codec/rtsp-message.js'

export interface WsReply extends RtspResponse {
  header (name: string): string | undefined
  /** The reply's own bytes, and the whole WebSocket message it came in. */
  raw: Buffer
  message: Buffer
}

export interface WsOpenOptions {
  protocol?: string | string[]
  path?: string
  query?: string
  /** ws client options (e.g. rejectUnauthorized: false for a test certificate). */
  wsOptions?: WebSocket.ClientOptions
  scheme?: 'ws' | 'wss'
}

export class WsRtspClient {
  readonly ws: WebSocket
  readonly messages: Buffer[] = []
  /** Messages that were not one whole RTSP response or a run of whole `$` frames. */
  readonly badMessages: string[] = []
  readonly frames = new Map<number, number>()
  /** RTP timestamps of the first and last frame per channel (even channels). */
  readonly rtpTimes = new Map<number, { first: number, last: number }>()
  session: string | undefined
  lastFrameAt = 0
  closeCode: number | null = null
  #cseq = 0
  readonly #pending = new Map<string, (r: WsReply) => void>()
  readonly #closed: Promise<number>

  private constructor (ws: WebSocket) {
    this.ws = ws
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data: Buffer) => this.#onMessage(Buffer.from(data)))
    this.#closed = new Promise(resolve => ws.on('close', code => { this.closeCode = code; resolve(code) }))
    ws.on('error', () => {})
  }

  static open (port: number, o: WsOpenOptions = {}): Promise<WsRtspClient> {
    const url = `${o.scheme ?? 'ws'}://127.0.0.1:${port}${o.path ?? '/rtsp-over-websocket'}${
      o.query === undefined ? '' : `?${o.query}`}`
    const ws = new WebSocket(url, o.protocol ?? 'binary', o.wsOptions)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsRtspClient(ws)))
      ws.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode ?? '?'}`), { status: res.statusCode }))
      )
      ws.once('error', reject)
    })
  }

  /** Open and expect a refusal: resolves with the HTTP status. */
  static async refused (port: number, o: WsOpenOptions = {}): Promise<number> {
    try {
      const c = await WsRtspClient.open(port, o)
      c.ws.terminate()
      return 101
    } catch (err) {
      return (err as { status?: number }).status ?? 0
    }
  }

  get closed (): Promise<number> { return this.#closed }

  #onMessage (m: Buffer): void {
    this.messages.push(m)
    if (m[0] === 0x24) {
      // a run of whole frames
      let at = 0
      while (at < m.length) {
        if (m[at] !== 0x24 || at + 4 > m.length) { this.badMessages.push(`partial frame run at ${at}`); return }
        const ch = m[at + 1]!
        const len = m.readUInt16BE(at + 2)
        if (at + 4 + len > m.length) { this.badMessages.push(`frame cut at ${at}`); return }
        this.frames.set(ch, (this.frames.get(ch) ?? 0) + 1)
        if (ch % 2 === 0 && len >= 12) {
          const ts = m.readUInt32BE(at + 4 + 4)
          const t = this.rtpTimes.get(ch)
          if (t === undefined) this.rtpTimes.set(ch, { first: ts, last: ts })
          else t.last = ts
        }
        at += 4 + len
      }
      this.lastFrameAt = Date.now()
      return
    }
    const units = new RtspDemuxer().push(m)
    if (units.length !== 1 || units[0]!.kind !== 'response' || units[0]!.raw.length !== m.length) {
      this.badMessages.push(m.toString('latin1', 0, 120))
      return
    }
    const u = units[0]!
    const reply: WsReply = { ...u, header: (n: string) => getHeader(u, n), message: m }
    const cseq = getHeader(u, 'CSeq') ?? ''
    const cb = this.#pending.get(cseq)
    if (cb !== undefined) { this.#pending.delete(cseq); cb(reply) }
  }

  frameCount (ch?: number): number {
    if (ch !== undefined) return this.frames.get(ch) ?? 0
    let n = 0
    for (const v of this.frames.values()) n += v
    return n
  }

  request (method: string, url: string, headers: Record<string, string> = {}, timeoutMs = 8000): Promise<WsReply> {
    const cseq = String(++this.#cseq)
    let text = `${method} ${url} RTSP/1.0\r\nCSeq: ${cseq}\r\nUser-Agent: tunnelgate-ws-test\r\n`
    const hs = { ...headers }
    if (this.session !== undefined && !Object.keys(hs).some(k => k.toLowerCase() === 'session')) {
      hs.Session = this.session
    }
    for (const [k, v] of Object.entries(hs)) text += `${k}: ${v}\r\n`
    text += '\r\n'
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cseq)
        reject(new Error(`no reply to ${method} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(cseq, r => {
        clearTimeout(timer)
        if (method === 'SETUP' && r.status === 200) this.session = r.header('Session')?.split(';')[0]
        resolve(r)
      })
      this.ws.send(Buffer.from(text, 'latin1'))
    })
  }

  /** OPTIONS, DESCRIBE, SETUP every track (interleaved 0-1, 2-3, ...); returns the DESCRIBE reply. */
  async setup (url: string): Promise<WsReply> {
    const o = await this.request('OPTIONS', url)
    if (o.status !== 200) throw new Error(`OPTIONS ${o.status}`)
    const d = await this.request('DESCRIBE', url, { Accept: 'application/sdp' })
    if (d.status !== 200) return d
    const base = d.header('Content-Base') ?? `${url}/`
    const controls = d.body
      .toString('latin1')
      .split(/\r?\n/)
      .filter(l => l.startsWith('a=control:'))
      .map(l => l.slice(10))
      .filter(c => c !== '*')
    for (const [i, c] of controls.entries()) {
      const u = /^rtsp:/i.test(c) ? c : new URL(c, base).href
      const s = await this.request('SETUP', u, { Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1}` })
      if (s.status !== 200) throw new Error(`SETUP ${u}: ${s.status}`)
    }
    return d
  }

  close (): void { this.ws.close(1000) }
}
