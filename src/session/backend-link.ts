/**
 * A session's one backend TCP connection: the choice and the connect (the next backend serving the
 * route when one fails), what waits for the connection, the write budget towards the backend
 * (limits.backendOutputBytes), the read side (the session's own read buffer, `ReadGate`, the demux
 * of the backend's bytes: runs of `$` frames go straight to the client output, RTSP messages to the
 * session), and the TEARDOWNs when the client has gone. The hot path is the read: no allocation
 * and no closure per frame (docs/architecture.md, "Read buffer").
 */
import net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { contained, type FaultOwner } from '../core/containment.js'
import type { BackendPool, BackendState } from '../backends/pool.js'
import type { ResolvedRoute } from '../backends/routes.js'
import { RtspDemuxer } from '../tunnel/codec/demux.js'
import { leadingFrames, type InterleavedFrame } from '../tunnel/codec/interleaved.js'
import type { RtspRequest, RtspResponse } from '../tunnel/codec/rtsp-message.js'
import { ReadGate } from './read-gate.js'
import type { ClientOutput, ReadSource } from './client-output.js'
import type { ClientSide } from './client-side.js'
import type { SessionTimers, TimerHandle } from './timers.js'

/** Label set of the per-write byte counter (no object per write). */
const CLIENT_TO_BACKEND = Object.freeze({ direction: 'client_to_backend' })
/** No backend has failed yet (shared, never added to). */
const NONE_TRIED: ReadonlySet<string> = new Set<string>()

export type LinkState = 'idle' | 'connecting' | 'connected' | 'closing' | 'closed'

/** What the link tells its session, and asks of it. */
export interface LinkOwner extends FaultOwner {
  /** Serialize a client request that waited for the connection (its URLs rewritten for the backend now known). */
  forBackend (req: RtspRequest): Buffer
  /** An RTSP message from the backend. */
  backendMessage (msg: RtspResponse | RtspRequest): void
  /** The backend sent bytes that are not RTSP. */
  backendGarbage (reason: string): void
  /** No backend left for the route: 453 when all are full, else 503. */
  unavailable (status: 453 | 503, reason: string): void
  /** The connection closed: by the backend, or after the TEARDOWNs (state 'closing'). */
  backendClosed (wasClosing: boolean): void
  /** The TEARDOWNs were answered, or their grace time passed. */
  teardownDone (): void
  /** Any byte from the backend. */
  touch (): void
  error (code: ErrorCode, reason: string): void
  close (reason: string, outcome: string): void
}

export interface LinkDeps {
  config: Config
  pool: BackendPool
  metrics: GatewayMetrics
  logger: Logger
  timers: SessionTimers
  client: ClientSide
  out: ClientOutput
  /** When the client arrived (performance.now()), for the setup-time histogram. */
  startedAt: number
}

export class BackendLink implements ReadSource {
  #state: LinkState = 'idle'
  #backend: BackendState | null = null
  #socket: net.Socket | null = null
  readonly #deps: LinkDeps
  readonly #owner: LinkOwner
  readonly #out: ClientOutput
  readonly #demux: RtspDemuxer
  /** Serialized client units (or requests still to rewrite) waiting for the connection. */
  #pending: Array<Buffer | RtspRequest> = []
  #pendingBytes = 0
  #connectTimer: TimerHandle | null = null
  #firstByte = false
  /** Bytes written towards the backend. */
  bytes = 0
  /**
   * backend.readBufferBytes > 0: this session's own buffer the backend socket reads into (socket
   * `onread`), so a read allocates nothing: at hundreds of Mbit/s, a fresh ArrayBuffer per read
   * made V8 run a full GC every few hundred ms (external memory pressure), each a pause of ms.
   */
  #readBuffer: Buffer | null = null
  #borrowed = false
  /** Pauses the backend socket while the client is full or holds a write of read buffer bytes. */
  #gate: ReadGate | null = null
  /** Set by teardown(): the next backend bytes (the TEARDOWN reply) end the session. */
  #teardownSent = false

  constructor (deps: LinkDeps, owner: LinkOwner) {
    this.#deps = deps
    this.#owner = owner
    this.#out = deps.out
    const l = deps.config.limits
    this.#demux = new RtspDemuxer({
      maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes
    })
  }

  get state (): LinkState { return this.#state }
  get backend (): BackendState | null { return this.#backend }
  get borrowed (): boolean { return this.#borrowed }
  get gate (): ReadGate | null { return this.#gate }

  /** Raw client bytes (frames, responses) for the backend; dropped when no backend is open. */
  send (buf: Buffer): void {
    if (this.#state === 'connected') this.write(buf)
    else if (this.#state === 'connecting') this.queue(buf)
  }

  /** Hold a client unit until the connection opens, within limits.pendingInputBytes. */
  queue (item: Buffer | RtspRequest): void {
    const size = Buffer.isBuffer(item) ? item.length : item.body.length + 512
    if (this.#pendingBytes + size > this.#deps.config.limits.pendingInputBytes) {
      this.#owner.error('TG_ERR_RTSP_TOO_LARGE', 'client sent too much before the backend connection opened')
      this.#owner.close('pending-overflow', 'client_error')
      return
    }
    this.#pending.push(item)
    this.#pendingBytes += size
  }

  /** Write towards the open connection, within limits.backendOutputBytes. */
  write (buf: Buffer): void {
    const socket = this.#socket!
    const limit = this.#deps.config.limits.backendOutputBytes
    if (socket.writableLength > 0 && socket.writableLength + buf.length > limit) {
      // The client is paused at the high-water mark; this is what still arrived past it.
      const queued = socket.writableLength + buf.length
      const why = `${queued} bytes would be queued towards the backend (limits.backendOutputBytes ${limit})`
      this.#owner.error('TG_ERR_BACKEND_SLOW', why)
      this.#deps.metrics.limitHitsTotal.inc({ limit: 'limits.backendOutputBytes' })
      this.#owner.close('backend-too-slow', 'backend_error')
      return
    }
    this.bytes += buf.length
    this.#deps.metrics.bytesTotal.inc(CLIENT_TO_BACKEND, buf.length)
    if (!socket.write(buf)) this.#deps.client.pauseInput()
  }

  /** Drop what waits for the connection (no backend is left). */
  dropPending (): void {
    this.#pending = []
    this.#pendingBytes = 0
  }

  /**
   * Connect to a backend serving `route`; `tried`: backends that failed for this session (allocated on
   * the first failure only).
   */
  connect (route: ResolvedRoute, tried: ReadonlySet<string> = NONE_TRIED): void {
    const d = this.#deps
    const choice = d.pool.choose(route.route, tried)
    if (choice.backend === null) {
      const full = choice.reason === 'all-full'
      this.#owner.unavailable(full ? 453 : 503, full ? 'all backends are full' : 'no backend reachable')
      return
    }
    const backend = d.pool.get(choice.backend)!
    this.#backend = backend
    d.pool.acquire(backend.config.name)
    this.#state = 'connecting'
    const owner = this.#owner
    const readBufferBytes = d.config.backend.readBufferBytes
    let socket: net.Socket
    // Not with limits.dropFramesAboveBytes: a lagging client must not pause the backend there
    // (frames are dropped instead), so a queued write could not hold the buffer.
    if (readBufferBytes > 0 && d.config.limits.dropFramesAboveBytes === 0) {
      // Reused by a failover connection: the failed one never carried data.
      const buffer = this.#readBuffer ??= Buffer.allocUnsafeSlow(readBufferBytes)
      const read = (n: number): boolean => { this.#borrowedRead(n); return true }
      const callback = contained(owner, 'session-backend-read', read, false)
      socket = net.connect({ host: backend.host, port: backend.port, noDelay: true, onread: { buffer, callback } })
    } else {
      socket = net.connect({ host: backend.host, port: backend.port, noDelay: true })
      socket.on('data', contained(owner, 'session-backend-read', (chunk: Buffer) => { this.#read(chunk) }))
    }
    this.#socket = socket
    this.#gate = new ReadGate(socket)
    socket.setKeepAlive(true, 30_000)
    this.#connectTimer = d.timers.set('session-connect-timer', d.config.backend.connectTimeoutMs, () => {
      socket.destroy(new Error('connect timeout'))
    })
    socket.once('connect', contained(owner, 'session-backend-connect', () => {
      this.#clearConnectTimer() // a held Timeout (and its closure) would outlive the setup
      if (this.#state !== 'connecting') return
      this.#state = 'connected'
      d.pool.markUp(backend.config.name)
      const pending = this.#pending
      this.dropPending()
      for (const item of pending) {
        if (this.#state !== 'connected') return
        this.write(Buffer.isBuffer(item) ? item : owner.forBackend(item))
      }
    }))
    socket.on('drain', contained(owner, 'session-backend-drain', () => d.client.resumeInput()))
    socket.on('error', contained(owner, 'session-backend-error', (err: Error) => {
      if (this.#state === 'connecting') {
        this.#clearConnectTimer()
        d.logger.warn({ backend: backend.config.name, err: err.message }, 'backend connect failed')
        d.pool.release(backend.config.name)
        d.pool.markFailed(backend.config.name)
        owner.error('TG_ERR_BACKEND_UNAVAILABLE', `${backend.config.name}: ${err.message}`)
        this.#backend = null
        this.#socket = null
        this.#gate = null
        this.#state = 'idle'
        const failed = new Set(tried)
        failed.add(backend.config.name)
        // Try the next backend serving this route; 503 when none is left.
        this.connect(route, failed)
        return
      }
      d.logger.debug({ err: err.message }, 'backend socket error')
    }))
    socket.on('close', contained(owner, 'session-backend-close', () => {
      if (this.#state === 'connected' || this.#state === 'closing') owner.backendClosed(this.#state === 'closing')
    }))
  }

  #clearConnectTimer (): void {
    this.#deps.timers.clear(this.#connectTimer)
    this.#connectTimer = null
  }

  /**
   * The client is gone: send the backend `requests` (a TEARDOWN for each session it granted); its
   * reply, the connection's close or the grace time ends the session. Further backend data is discarded.
   */
  teardown (requests: Buffer[]): void {
    const socket = this.#socket!
    this.#state = 'closing'
    for (const r of requests) socket.write(r)
    this.#teardownSent = true
    this.#gate!.release()
    const grace = this.#deps.config.backend.teardownGraceMs
    this.#deps.timers.set('session-teardown-timer', grace, () => this.#owner.teardownDone())
  }

  /** Close the connection (FIN, destroyed after a grace time) and give its backend back. Idempotent. */
  close (): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#clearConnectTimer()
    this.dropPending()
    const s = this.#socket
    if (s !== null && !s.destroyed) {
      s.end()
      setTimeout(() => s.destroy(), 2000).unref()
    }
    if (this.#backend !== null) this.#deps.pool.release(this.#backend.config.name)
  }

  /** After a fault while closing: mark closed and destroy the connection, nothing else. */
  abort (): void {
    this.#state = 'closed'
    this.#socket?.destroy()
  }

  /** `n` bytes arrived in the read buffer (socket `onread`): valid until this returns. */
  #borrowedRead (n: number): void {
    this.#borrowed = true
    try {
      this.#read(this.#readBuffer!.subarray(0, n))
    } finally {
      this.#borrowed = false
    }
  }

  #read (chunk: Buffer): void {
    if (this.#teardownSent) { this.#owner.teardownDone(); return }
    this.#data(chunk)
  }

  #data (chunk: Buffer): void {
    const d = this.#deps
    const out = this.#out
    if (this.#backend !== null) d.pool.addBytes(this.#backend.config.name, chunk.length)
    if (!this.#firstByte) {
      this.#firstByte = true
      d.metrics.tunnelSetupSeconds.observe((performance.now() - d.startedAt) / 1000)
    }
    this.#owner.touch()
    // A `$` frame held from the last read (large reads usually end mid-frame): complete it from the
    // head of this read alone, rather than have the demuxer copy the whole read behind it.
    let carried: Buffer | null = null
    const need = this.#demux.frameRemainder
    if (need > 0 && need < chunk.length) {
      carried = (this.#demux.push(chunk.subarray(0, need))[0] as InterleavedFrame).raw
      chunk = chunk.subarray(need)
    }
    // Fast path, no allocation per frame: with nothing held by the demuxer, the whole `$` frames
    // that start the read leave as one slice of it (with the completed frame before them: one
    // write, as when the demuxer returned them back to back); only what follows (a partial frame,
    // an RTSP message) goes through the demuxer. Same writes as the demuxer path below.
    if (this.#demux.buffered === 0) {
      const lead = leadingFrames(chunk)
      if (carried !== null) {
        out.frames += 1 + lead.frames
        if (lead.frames === 0) out.write(carried, 1)
        else {
          out.writeBoth(carried, lead.bytes === chunk.length ? chunk : chunk.subarray(0, lead.bytes),
            1 + lead.frames)
        }
      } else if (lead.frames > 0) {
        out.frames += lead.frames
        out.write(lead.bytes === chunk.length ? chunk : chunk.subarray(0, lead.bytes), lead.frames)
      }
      if (lead.bytes === chunk.length) return
      chunk = chunk.subarray(lead.bytes)
    }
    const units = this.#demux.push(chunk)
    // Consecutive frames that sit back to back in one read go out in one write.
    let runStart = -1
    let runEnd = -1
    let runBuf: Buffer | null = null
    let runFrames = 0
    const flushRun = (): void => {
      if (runBuf === null) return
      const whole = runBuf.byteOffset === runStart && runBuf.length === runEnd - runStart
      out.write(whole ? runBuf : Buffer.from(runBuf.buffer, runStart, runEnd - runStart), runFrames)
      runBuf = null
    }
    for (const u of units) {
      if (u.kind === 'frame') {
        out.frames++
        if (runBuf !== null && u.raw.buffer === (runBuf as Buffer).buffer && u.raw.byteOffset === runEnd) {
          runEnd += u.raw.length
          runFrames++
          continue
        }
        flushRun()
        runBuf = u.raw
        runFrames = 1
        runStart = u.raw.byteOffset
        runEnd = runStart + u.raw.length
        continue
      }
      flushRun()
      if (u.kind === 'response' || u.kind === 'request') this.#owner.backendMessage(u)
      else { this.#owner.backendGarbage(u.reason); return }
    }
    flushRun()
  }
}
