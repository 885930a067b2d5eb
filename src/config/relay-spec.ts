/** Relay and peer addresses in the config: `host:port`, `[v6]:port` or `dns:NAME:PORT` (re-resolved). */
import { TunnelgateError } from '../core/errors.js'

export function parseRelaySpec (spec: string): {
  kind: 'static'
  host: string
  port: number
} | { kind: 'dns', name: string, port: number } {
  const dnsMatch = /^dns:([^:]+):(\d+)$/.exec(spec)
  if (dnsMatch) return { kind: 'dns', name: dnsMatch[1]!, port: Number(dnsMatch[2]) }
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(spec)
  if (!m) throw new TunnelgateError('TG_ERR_CFG_INVALID', `relay '${spec}' must be host:port or dns:NAME:PORT`)
  return { kind: 'static', host: m[1]!, port: Number(m[2]) }
}
