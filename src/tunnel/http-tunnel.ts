/**
 * A paired QuickTime tunnel as one client connection (reference §1): the GET socket carries
 * server→client bytes raw (and, upstream, live555-style raw `$` RTCP), each POST socket
 * carries base64 client→server bytes. POSTs may come and go (re-POST, overlapping POSTs);
 * the tunnel lives as long as its GET.
 */
import type net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { Base64StreamDecoder } from './codec/base64-stream.js'
import { ChunkedDecoder } from './codec/chunked.js'
import { RtspDemuxer, type RtspUnit } from './codec/demux.js'
import { getHeader } from './codec/rtsp-message.js'
import type { HttpHead } from './codec/http-head.js'
import type { ClientSide } from '../session/client-side.js'
import type { ProxySession } from '../session/proxy-session.js'
import { contained, reportFault, type EntryPoint, type FaultOwner } from '../core/containment.js'
import { SocketOutput, type OutputLedger } from '../session/socket-output.js'

/** What a tunnel needs from its relay. */
export interface TunnelDeps {
  config: Config
  metrics: GatewayMetrics
  logger: Logger
  /** The process-wide output ledger (limits.clientOutputBytesTotal); null = none. */
  output?: OutputLedger | null
}

/**
 * What a POST leg is used as: a net.Socket, or in a relay worker a leg the portal relays as
 * messages (src/route/relayed-post.ts).
 */
export interface PostSocket {
  on (event: 'data', listener: (chunk: Buffer) => void): unknown
  on (event: 'close' | 'error', listener: (...args: any[]) => void): unknown
  once (event: 'close', listener: () => void): unknown
  write (data: Buffer | string): boolean
  end (): unknown
  end (data: Buffer | string): unknown
  destroy (): unknown
  pause (): unknown
  resume (): unknown
  removeAllListeners (event: 'data' | 'close' | 'error'): unknown
  setNoDelay (noDelay?: boolean): unknown
  setKeepAlive (enable?: boolean, initialDelay?: number): unknown
}

interface PostLeg {
  socket: PostSocket
  decoder: Base64StreamDecoder
  chunked: ChunkedDecoder | null
  demux: RtspDemuxer
}

export class HttpTunnel implements ClientSide, FaultOwner {
  readonly cookie: string
  readonly #get: net.Socket
  /** The GET's output budget: every write towards the client goes through it. */
  readonly #out: SocketOutput
  readonly #posts = new Set<PostLeg>()
  readonly #config: Config
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #getDemux: RtspDemuxer
  /** First bytes of the incomplete unit held by #getDemux ('' when none). */
  #heldStart = ''
  #session: ProxySession | null = null
  #closed = false
  #inputPaused = false
  #drainCbs: Array<() => void> = []
  #onEnd: () => void

  constructor (cookie: string, get: net.Socket, deps: TunnelDeps, onEnd: () => void) {
    this.cookie = cookie
    this.#get = get
    this.#config = deps.config
    this.#metrics = deps.metrics
    this.#log = deps.logger
    this.#onEnd = onEnd
    const l = deps.config.limits
    this.#getDemux = new RtspDemuxer({
      maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes
    })
    this.#out = new SocketOutput(get, l.clientOutputBytes, deps.output ?? null)
    get.setNoDelay(true)
    get.setKeepAlive(true, 30_000)
    get.on('drain', contained(this, 'tunnel-get-drain', () => { for (const cb of this.#drainCbs) cb() }))
    get.on('data', contained(this, 'tunnel-get-data', (chunk: Buffer) => this.#getUpstream(chunk)))
    get.on('error', () => {})
    get.on('close', contained(this, 'tunnel-get-close', () => this.#getClosed()))
  }

  /** Its pairing window ended with no POST (the relay's pairing says so): close the tunnel. */
  pairingExpired (): void {
    if (this.#closed) return
    this.#metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_PAIRING_TIMEOUT' })
    this.#log.info({ event: 'pairing-timeout', leg: 'get' }, 'GET without POST dropped')
    if (this.#session !== null) this.#session.close('pairing-timeout', 'unpaired')
    else this.close()
  }

  /** FaultOwner: the session's tag, or the GET's own until one is bound. */
  get faultTag (): string { return this.#session?.faultTag ?? '' }

  /** FaultOwner: a throw in a leg's handler closes this tunnel (through its session when bound). */
  fault (err: unknown, where: EntryPoint): void {
    if (this.#session !== null) { this.#session.fault(err, where); return }
    reportFault(this.#metrics, this.#log, where, err, { transport: 'http-tunnel' })
    try { this.close() } catch { this.#get.destroy() }
  }

  get closed (): boolean { return this.#closed }

  bind (session: ProxySession): void { this.#session = session }

  /** Attach a POST leg (its head already parsed; `initial` is the body bytes read with it). */
  attachPost (socket: PostSocket, head: HttpHead, initial: Buffer): void {
    if (this.#closed) { socket.destroy(); return }
    const te = getHeader(head, 'Transfer-Encoding')
    const l = this.#config.limits
    const leg: PostLeg = {
      socket,
      decoder: new Base64StreamDecoder(),
      chunked: te !== undefined && /chunked/i.test(te) ? new ChunkedDecoder() : null,
      demux: new RtspDemuxer({
        maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes
      })
    }
    this.#posts.add(leg)
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    // Apple servers never answer the POST; only an explicit Expect gets its interim 100.
    const expect = getHeader(head, 'Expect')
    if (expect !== undefined && /100-continue/i.test(expect)) socket.write('HTTP/1.1 100 Continue\r\n\r\n')
    socket.on('data', contained(this, 'tunnel-post-data', (chunk: Buffer) => this.#postData(leg, chunk)))
    socket.on('error', () => {})
    socket.on('close', () => { this.#posts.delete(leg) })
    if (this.#inputPaused) socket.pause()
    else socket.resume()
    if (initial.length > 0) contained(this, 'tunnel-post-data', (b: Buffer) => this.#postData(leg, b))(initial)
  }

  #postData (leg: PostLeg, chunk: Buffer): void {
    if (this.#closed || this.#session === null) return
    this.#session.touch()
    let bytes = chunk
    if (leg.chunked !== null) {
      const r = leg.chunked.push(chunk)
      if (r.error !== undefined) {
        this.#metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_BAD_CHUNKED' })
        this.#log.info({ reason: r.error }, 'bad chunked POST leg closed')
        leg.socket.destroy()
        return
      }
      bytes = r.data
    }
    const { data, garbage } = leg.decoder.push(bytes)
    if (garbage > 0) {
      this.#metrics.errorsTotal.inc({ code: 'TG_ERR_B64_GARBAGE' }, garbage)
      this.#log.debug({ garbage }, 'non-base64 bytes in a POST body')
    }
    if (data.length > 0) this.#deliver(leg.demux.push(data))
  }

  #getUpstream (chunk: Buffer): void {
    if (this.#closed || this.#session === null) return
    this.#session.touch()
    const units = this.#getDemux.push(chunk)
    // Start of the unit the demuxer holds incomplete: an HTTP head there (a POST on the GET's own
    // connection) is refused now, not after the body its Content-Length (32767) announces.
    const held = this.#getDemux.buffered
    if (held === 0) this.#heldStart = ''
    else if (held <= chunk.length) {
      this.#heldStart = chunk.toString('latin1', chunk.length - held, Math.min(chunk.length, chunk.length - held + 512))
    } else if (this.#heldStart.length < 512) {
      this.#heldStart += chunk.toString('latin1', 0, Math.min(chunk.length, 512 - this.#heldStart.length))
    }
    if (/^[A-Za-z]+ \S+ HTTP\/\d\.\d\r?\n/.test(this.#heldStart)) {
      this.#metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_SAME_CONNECTION' })
      this.#log.info('HTTP request on a tunnel GET connection refused')
      this.#session.close('http-on-get-connection', 'client_error')
      return
    }
    for (const u of units) {
      if (u.kind === 'frame') {
        if (this.#config.tunnel.getUpstream === 'forward') this.#session.handleClientUnit(u)
        continue
      }
      if (u.kind === 'request' && u.version.startsWith('HTTP/')) {
        // GET and POST of one cookie on one TCP connection (live555#19): refused, cleanly.
        this.#metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_SAME_CONNECTION' })
        this.#log.info({ method: u.method }, 'HTTP request on a tunnel GET connection refused')
        this.#session.close('http-on-get-connection', 'client_error')
        return
      }
      this.#session.handleClientUnit(u)
    }
  }

  #deliver (units: RtspUnit[]): void {
    for (const u of units) {
      if (this.#session === null || this.#session.closed) return
      this.#session.handleClientUnit(u)
    }
  }

  #getClosed (): void {
    if (this.#closed) return
    if (this.#session !== null) this.#session.clientGone('client-closed')
    else this.close()
  }

  // ClientSide
  write (buf: Buffer, done?: () => void): boolean {
    if (!this.#closed) return this.#out.write(buf, done)
    done?.()
    return true
  }

  writeBoth (a: Buffer, b: Buffer, done?: () => void): boolean {
    if (!this.#closed) return this.#out.writeBoth(a, b, done)
    done?.()
    return true
  }

  get queued (): number { return this.#get.writableLength }
  onDrain (cb: () => void): void { this.#drainCbs.push(cb) }
  onOverflow (handler: (reason: string) => void): void { this.#out.onOverflow(handler) }
  /** Backpressure from the backend: stop reading every leg, the GET's upstream (`$` RTCP) too. */
  pauseInput (): void {
    this.#inputPaused = true
    this.#get.pause()
    for (const p of this.#posts) p.socket.pause()
  }

  resumeInput (): void {
    this.#inputPaused = false
    this.#get.resume()
    for (const p of this.#posts) p.socket.resume()
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    // A GET the client already closed needs nothing more (end() on it would only build an
    // ERR_STREAM_DESTROYED error, stack and all); an open one ends once its queue has left, or
    // is destroyed a second later when the client does not read it.
    if (!this.#get.destroyed) {
      this.#get.end()
      this.#get.destroySoon?.()
      setTimeout(() => this.#get.destroy(), 1000).unref()
    }
    for (const p of this.#posts) p.socket.destroy()
    this.#posts.clear()
    this.#onEnd()
  }
}

/**
 * `a` then `b` in one writev (one syscall where a single write of both would be one); false like
 * socket.write; `done` when both have left the process (they leave together).
 */
export function writeCorked (socket: net.Socket, a: Buffer, b: Buffer, done?: () => void): boolean {
  socket.cork()
  socket.write(a)
  const ok = socket.write(b, done)
  socket.uncork()
  return ok
}
