/**
 * Backend health: an RTSP `OPTIONS *` probe of every backend every `backend.probeIntervalMs`, built and
 * parsed with the pure codecs. Any RTSP reply below 500 passes (a 401 or 404 still proves a live RTSP
 * server); a refused or reset connection, no reply within `backend.probeTimeoutMs`, bytes that are not
 * RTSP, or a 5xx fail. A failure takes the backend out of the choice at once; it comes back after
 * `backend.probeRise` passes in a row (BackendPool.probeResult). Connection failures of real sessions
 * also take it out (BackendPool.markFailed). Metrics: `tunnelgate_backend_up{backend}`,
 * `tunnelgate_backend_probe_seconds{backend}`; failures count `TG_ERR_BACKEND_PROBE`.
 */
import net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { RtspDemuxer } from '../tunnel/codec/demux.js'
import { serializeMessage, type RtspRequest } from '../tunnel/codec/rtsp-message.js'
import type { BackendPool, BackendState } from './pool.js'

export interface ProbeOutcome { ok: boolean, status?: number, reason?: string, seconds: number }

/** One RTSP OPTIONS probe of host:port. Never rejects. */
export function probeRtsp (host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  const t0 = performance.now()
  return new Promise(resolve => {
    const socket = net.connect({ host, port, noDelay: true })
    const demux = new RtspDemuxer({ maxHeadBytes: 16_384, maxHeaders: 64, maxBodyBytes: 65_536 })
    let done = false
    const finish = (o: Omit<ProbeOutcome, 'seconds'>): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...o, seconds: (performance.now() - t0) / 1000 })
    }
    const timer = setTimeout(() => finish({ ok: false, reason: `no reply within ${timeoutMs} ms` }), timeoutMs)
    socket.once('connect', () => {
      const req: RtspRequest = {
        kind: 'request',
        method: 'OPTIONS',
        uri: '*',
        version: 'RTSP/1.0',
        headers: [['CSeq', '1'], ['User-Agent', 'tunnelgate-probe']],
        body: Buffer.alloc(0)
      }
      socket.write(serializeMessage(req))
    })
    socket.on('data', chunk => {
      for (const u of demux.push(chunk)) {
        if (u.kind === 'response') {
          finish(
            u.status < 500
              ? { ok: true, status: u.status }
              : { ok: false, status: u.status, reason: `RTSP ${u.status}` }
          )
          return
        }
        if (u.kind === 'error') { finish({ ok: false, reason: `not RTSP: ${u.reason}` }); return }
      }
    })
    socket.once('error', err => finish({ ok: false, reason: err.message }))
    socket.once('close', () => finish({ ok: false, reason: 'closed without a reply' }))
  })
}

export class BackendHealth {
  readonly #config: Config
  readonly #pool: BackendPool
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  #timer: NodeJS.Timeout | null = null
  #round: Promise<void> | null = null
  #closed = false

  constructor (config: Config, pool: BackendPool, metrics: GatewayMetrics, logger: Logger) {
    this.#config = config
    this.#pool = pool
    this.#metrics = metrics
    this.#log = logger
  }

  start (): void {
    const every = this.#config.backend.probeIntervalMs
    if (every <= 0) return
    this.#timer = setInterval(() => { void this.probeAll() }, every)
    this.#timer.unref()
    void this.probeAll()
  }

  /** Probe every backend once (a round still running is not doubled). */
  probeAll (): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#round !== null) return this.#round
    this.#round = Promise.all(this.#pool.all().map(b => this.#probe(b))).then(() => {}).finally(() => {
      this.#round = null
    })
    return this.#round
  }

  async #probe (b: BackendState): Promise<void> {
    const name = b.config.name
    const r = await probeRtsp(b.host, b.port, this.#config.backend.probeTimeoutMs)
    if (this.#closed) return
    this.#metrics.backendProbeSeconds.observe({ backend: name }, r.seconds)
    const wasHealthy = this.#pool.isHealthy(b)
    if (!r.ok) this.#metrics.errorsTotal.inc({ code: 'TG_ERR_BACKEND_PROBE' })
    this.#pool.probeResult(name, r.ok)
    const nowHealthy = this.#pool.isHealthy(b)
    if (wasHealthy && !r.ok) {
      this.#log.warn(
        { code: 'TG_ERR_BACKEND_PROBE', backend: name, reason: r.reason },
        'backend failed its health probe; out of the choice'
      )
    } else if (!wasHealthy && nowHealthy) {
      this.#log.info({ backend: name }, 'backend passed its health probes; back in the choice')
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    await this.#round
  }
}
