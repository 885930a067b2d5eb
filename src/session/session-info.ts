/**
 * What a proxy session is told when it opens (who, from where, by which door), what it needs, and
 * what it reports: a relay's summary tally and the snapshot the admin API lists and the access log records.
 */
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { BackendPool } from '../backends/pool.js'
import type { LiveGate } from './live-seam.js'
import type { OutputLedger } from './socket-output.js'

export interface SessionInfo {
  transport: 'http-tunnel' | 'rtsp' | 'websocket'
  clientAddress: string
  userAgent: string
  /** Path of the HTTP GET (used to route `OPTIONS *` before any URL was seen). */
  entryPath: string
  /** When the client arrived (ms, performance.now() clock) for the setup-time histogram. */
  startedAt: number
  /** Stream path a token bound this session to: requests for other paths get RTSP 403. */
  allowedPath?: string
  /** Stable id for the admin API and the access log (never the cookie). */
  id?: string
  /** The gateway-authenticated user, when gateway auth is on. */
  user?: string
  /** Name of the relay (process) that holds the session. */
  relay?: string
}

/** What a relay's summary (status page, /metrics byte totals) counts of one open session. */
export interface SessionTally { path: string, backend: string | null, bytes: number }

/** What the admin API lists and the access log records for one session. */
export interface SessionSnapshot {
  id: string
  transport: SessionInfo['transport']
  client: string
  userAgent: string
  path: string
  backend: string | null
  relay: string
  user: string
  /** Epoch ms when the session opened. */
  startedAt: number
  ageMs: number
  bytesToClient: number
  bytesFromClient: number
  rtpPacketsToClient: number
  rtpPacketsFromClient: number
}

export interface SessionDeps {
  config: Config
  pool: BackendPool
  metrics: GatewayMetrics
  logger: Logger
  /** Live fan-out (src/live/): asked at the first routed request whether the path is live. */
  live?: LiveGate
  /** Process-wide output ledger for the client sides (limits.clientOutputBytesTotal). */
  output?: OutputLedger
}
