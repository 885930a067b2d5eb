/**
 * The seam between a proxy session and the live fan-out (src/live/): at the first routed request
 * the session asks the gate, and a delegate it returns serves the client from then on.
 */
import type { FaultOwner } from '../core/containment.js'
import type { ResolvedRoute } from '../backends/routes.js'
import type { RtspUnit } from '../tunnel/codec/demux.js'
import type { RtspRequest } from '../tunnel/codec/rtsp-message.js'
import type { ClientSide } from './client-side.js'

/**
 * The live fan-out seam. At the first routed request (before any backend is dialled) the session
 * asks the gate; a non-null delegate then receives every later client unit and answers the client
 * itself (one shared backend session per live path). `release` hands the client back to ordinary
 * proxying (route `live: auto` that turned out to be VOD) with the units the delegate held.
 */
export interface LiveGate {
  attach (req: RtspRequest, ctx: LiveAttachContext): LiveDelegate | null
}

export interface LiveAttachContext {
  /** Where a fault in the delegate's own handlers goes (the session: it closes). */
  owner: FaultOwner
  route: ResolvedRoute
  /** The routed public path. */
  path: string
  client: ClientSide
  /** Who the client is (log lines); the seam does not need the rest of the session. */
  info: { clientAddress: string }
  /** Bytes / $ frames written to the client (activity, counters). */
  sent (bytes: number, frames: number): void
  /** Close the client session (every connection of it). */
  close (reason: string, outcome: string): void
  release (units: RtspUnit[]): void
}

export interface LiveDelegate {
  handleClientUnit (unit: RtspUnit): void
  /** The client went away (GET closed): finish and call ctx.close. */
  clientGone (reason: string): void
  /** The session closed (any reason): let go of shared state. Idempotent. */
  closed (): void
}
