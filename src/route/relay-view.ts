/**
 * What one relay (the in-process relay, a worker, a relay node) tells the operator surface about
 * its sessions: the tunnel list, per-backend / per-path byte totals that survive session ends
 * (so the status page and the Prometheus counters can compute rates), and access records.
 */
import type { SessionSnapshot, SessionTally } from '../session/proxy-session.js'
import { redactUrl } from '../core/redact.js'

export interface AccessRecord {
  /** Stable tunnel id (not the cookie). */
  id: string
  transport: string
  client: string
  userAgent: string
  path: string
  backend: string | null
  relay: string
  /** ISO time the client arrived. */
  start: string
  durationMs: number
  bytesToClient: number
  bytesFromClient: number
  /** Interleaved `$` frames (RTP and RTCP) sent to the client / received from it. */
  rtpPacketsToClient: number
  rtpPacketsFromClient: number
  reason: string
  outcome: string
  /** The gateway-authenticated user ('-' when gateway auth is off). */
  user: string
}

export interface AccessSink { write (r: AccessRecord): void }

/** Paths listed per relay in a summary (the busiest by bytes, then tunnels). */
export const SUMMARY_PATHS = 20

export interface RelaySummary {
  relay: string
  tunnels: number
  unpairedLegs: number
  /** Bytes relayed by this relay since it started (both directions, sessions open and closed). */
  bytes: number
  /** Per backend: bytes since start (both directions) and sessions open. */
  backends: Record<string, { bytes: number }>
  /** The busiest paths: tunnels open and bytes since start (bounded to SUMMARY_PATHS). */
  paths: Array<{ path: string, tunnels: number, bytes: number }>
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0

/**
 * The relay summaries in a relay node's `/status/summary` reply ({ relays: RelaySummary[] }),
 * checked field by field: what does not have the shape is left out (never thrown).
 */
export function parseSummaries (body: unknown): RelaySummary[] {
  const list = (body as { relays?: unknown } | null)?.relays
  if (!Array.isArray(list)) return []
  const out: RelaySummary[] = []
  for (const x of list as Array<Record<string, unknown>>) {
    if (x === null || typeof x !== 'object' || typeof x.relay !== 'string' || !isCount(x.tunnels) ||
        !isCount(x.unpairedLegs) || !isCount(x.bytes)) { continue }
    const backends: Record<string, { bytes: number }> = {}
    if (x.backends !== null && typeof x.backends === 'object') {
      for (const [k, v] of Object.entries(x.backends as Record<string, { bytes?: unknown }>)) {
        if (v !== null && typeof v === 'object' && isCount(v.bytes)) backends[k] = { bytes: v.bytes }
      }
    }
    const paths = Array.isArray(x.paths)
      ? (x.paths as Array<Record<string, unknown>>).filter(
          p => p !== null && typeof p === 'object' && typeof p.path === 'string' && isCount(p.tunnels) &&
            isCount(p.bytes)
        ).slice(0, SUMMARY_PATHS).map(
          p => ({ path: p.path as string, tunnels: p.tunnels as number, bytes: p.bytes as number })
        )
      : []
    out.push({
      relay: x.relay.slice(0, 200), tunnels: x.tunnels, unpairedLegs: x.unpairedLegs, bytes: x.bytes, backends, paths
    })
  }
  return out
}

/** Byte totals of sessions that have ended, so totals stay monotonic. */
export class ClosedTotals {
  bytes = 0
  readonly byBackend = new Map<string, number>()
  readonly byPath = new Map<string, number>()
  /** Bound the per-path memory: past this many paths the smallest are forgotten. */
  readonly maxPaths: number

  constructor (maxPaths = 1000) { this.maxPaths = maxPaths }

  add (s: SessionSnapshot): void {
    const b = s.bytesToClient + s.bytesFromClient
    this.bytes += b
    if (s.backend !== null) this.byBackend.set(s.backend, (this.byBackend.get(s.backend) ?? 0) + b)
    this.byPath.set(s.path, (this.byPath.get(s.path) ?? 0) + b)
    if (this.byPath.size > this.maxPaths) {
      let minKey = ''
      let min = Infinity
      for (const [k, v] of this.byPath) if (v < min) { min = v; minKey = k }
      this.byPath.delete(minKey)
    }
  }
}

/**
 * One relay's summary from its open sessions' tallies (SessionTally: path, backend, bytes; no
 * snapshot per session, the status feed takes one every few seconds) and the closed sessions' totals.
 */
export function summarize (
  relay: string, live: Iterable<SessionTally>, closed: ClosedTotals, unpairedLegs: number
): RelaySummary {
  let bytes = closed.bytes
  let tunnels = 0
  const backends: Record<string, { bytes: number }> = {}
  for (const [k, v] of closed.byBackend) backends[k] = { bytes: v }
  const paths = new Map<string, { tunnels: number, bytes: number }>()
  for (const s of live) {
    tunnels++
    bytes += s.bytes
    if (s.backend !== null) (backends[s.backend] ??= { bytes: 0 }).bytes += s.bytes
    const p = paths.get(s.path) ?? { tunnels: 0, bytes: closed.byPath.get(s.path) ?? 0 }
    p.tunnels++
    p.bytes += s.bytes
    paths.set(s.path, p)
  }
  const list = [...paths.entries()].map(([path, v]) => ({ path, ...v }))
  list.sort((a, b) => b.tunnels - a.tunnels || b.bytes - a.bytes)
  return { relay, tunnels, unpairedLegs, bytes, backends, paths: list.slice(0, SUMMARY_PATHS) }
}

export function accessRecord (s: SessionSnapshot, reason: string, outcome: string): AccessRecord {
  return {
    id: s.id,
    transport: s.transport,
    client: s.client,
    userAgent: s.userAgent,
    path: redactUrl(s.path),
    backend: s.backend,
    relay: s.relay,
    start: new Date(s.startedAt).toISOString(),
    durationMs: s.ageMs,
    bytesToClient: s.bytesToClient,
    bytesFromClient: s.bytesFromClient,
    rtpPacketsToClient: s.rtpPacketsToClient,
    rtpPacketsFromClient: s.rtpPacketsFromClient,
    reason,
    outcome,
    user: s.user === '' ? '-' : s.user
  }
}

/**
 * The user name of a GET that the front door authenticated with HTTP Basic (it refuses the GET
 * otherwise, so the name is verified whenever gateway users are configured).
 */
export function basicUser (headers: ReadonlyArray<readonly [string, string]>): string | undefined {
  for (const [k, v] of headers) {
    if (k.toLowerCase() !== 'authorization') continue
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(v.trim())
    if (m === null) return undefined
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return colon > 0 ? decoded.slice(0, colon).slice(0, 64) : undefined
  }
  return undefined
}
