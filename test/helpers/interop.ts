/**
 * Shared pieces of the interop tests (test/interop/): a metric read by label, the count of TCP
 * connections established to a backend port (from /proc/net/tcp), the wait for a quiet gateway,
 * ffmpeg output parsing and SDP controls.
 */
import { readFileSync } from 'node:fs'
import type { Gateway } from '../../src/gateway.js'
import { metric } from './gateway-harness.js'
import { waitFor } from './wait.js'

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

export interface QuiesceState { tunnels: number, backendSessions: number, backendConnections: number }

/** Wait until the gateway has no tunnel, no backend session and the backend no connection. */
export async function waitQuiet (gw: Gateway, backendPorts: number[], timeoutMs = 8000): Promise<QuiesceState> {
  return await waitFor(async () => ({
    tunnels: await metric(gw, 'tunnelgate_tunnels_active'),
    backendSessions: await metric(gw, 'tunnelgate_backend_sessions'),
    backendConnections: backendPorts.reduce((s, p) => s + establishedTo(p), 0)
  }), s => s.tunnels === 0 && s.backendSessions === 0 && s.backendConnections === 0, timeoutMs)
}

/** `-f framecrc` output → frames per stream index, and each stream's first pts (in its time base). */
export function parseFramecrc (text: string): {
  frames: Map<number, number>
  firstPts: Map<number, number>
  timebase: Map<number, number>
} {
  const frames = new Map<number, number>()
  const firstPts = new Map<number, number>()
  const timebase = new Map<number, number>()
  for (const line of text.split('\n')) {
    const tb = /^#tb (\d+): (\d+)\/(\d+)/.exec(line)
    if (tb !== null) {
      timebase.set(Number(tb[1]), Number(tb[2]) / Number(tb[3]))
      continue
    }
    const m = /^\s*(\d+),\s*(-?\d+),\s*(-?\d+),/.exec(line)
    if (m === null) continue
    const idx = Number(m[1])
    frames.set(idx, (frames.get(idx) ?? 0) + 1)
    if (!firstPts.has(idx)) firstPts.set(idx, Number(m[3]))
  }
  return { frames, firstPts, timebase }
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
    else if (line.startsWith('a=control:') && out.length > 0) {
      out[out.length - 1]!.control = line.slice('a=control:'.length).trim()
    }
  }
  return out
}
