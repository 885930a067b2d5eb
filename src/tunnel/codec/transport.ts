/**
 * RTSP Transport and Session header helpers (RFC 2326 §12.39, §12.37; RFC 7826 §18.54):
 *
 *   Transport          = "Transport" ":" 1#transport-spec
 *   transport-spec     = transport-protocol "/" profile [ "/" lower-transport ] *( ";" parameter )
 *   parameter          = "unicast" / "multicast" / "destination" [ "=" address ]
 *                      / "interleaved" "=" channel [ "-" channel ] / … (others passed through)
 *   channel            = 1*3DIGIT                                      ; 0–255
 *   Session            = "Session" ":" session-id [ ";" "timeout" "=" delta-seconds ]
 *
 * A tunnel carries media interleaved on the RTSP connection, so only the TCP alternatives of
 * a client's offer are forwarded (reference §3.3); `destination=` is dropped from them because
 * it would let a client aim a backend's media at a third party and means nothing for TCP.
 */

/** Lower-case transport protocols whose media can ride interleaved on the RTSP connection. */
export const TCP_TRANSPORT_PROTOCOLS: ReadonlySet<string> = new Set([
  'rtp/avp/tcp',
  'rtp/avpf/tcp',
  'rtp/savp/tcp',
  'rtp/savpf/tcp'
])

/** Parameters removed from forwarded TCP alternatives (lower case). */
export const DROPPED_TRANSPORT_PARAMS: ReadonlySet<string> = new Set(['destination'])

/** Longest Transport value considered (longer values are refused as a whole). */
export const MAX_TRANSPORT_VALUE = 4096

/**
 * Keep the TCP alternatives of a Transport list, without `destination`. Returns null when no
 * TCP alternative remains (the caller answers 461 Unsupported Transport).
 */
export function filterTcpTransports (value: string): string | null {
  if (value.length > MAX_TRANSPORT_VALUE) return null
  const kept: string[] = []
  for (const alt of splitOutsideQuotes(value, ',')) {
    const params = splitOutsideQuotes(alt, ';').map((p) => p.trim())
    const proto = params[0]!
    if (!TCP_TRANSPORT_PROTOCOLS.has(proto.toLowerCase())) continue
    const out = [proto]
    for (let i = 1; i < params.length; i++) {
      const p = params[i]!
      if (p === '') continue
      const eq = p.indexOf('=')
      const name = (eq === -1 ? p : p.slice(0, eq)).trim().toLowerCase()
      if (DROPPED_TRANSPORT_PARAMS.has(name)) continue
      out.push(p)
    }
    kept.push(out.join(';'))
  }
  return kept.length === 0 ? null : kept.join(',')
}

/**
 * The `interleaved=a-b` channels of the first transport-spec that has them. A single channel
 * (`interleaved=4`) gives [4, 4]. Null when absent or out of 0–255.
 */
export function parseInterleaved (value: string): [number, number] | null {
  for (const alt of splitOutsideQuotes(value, ',')) {
    for (const p of splitOutsideQuotes(alt, ';')) {
      const m = /^\s*interleaved\s*=\s*(\d{1,3})(?:\s*-\s*(\d{1,3}))?\s*$/i.exec(p)
      if (!m) continue
      const a = Number(m[1])
      const b = m[2] === undefined ? a : Number(m[2])
      if (a > 255 || b > 255) return null
      return [a, b]
    }
  }
  return null
}

/** Session header: id and the optional timeout in seconds (absent → the caller assumes 60). */
export function parseSessionHeader (value: string): { id: string, timeout?: number } {
  const parts = value.split(';')
  const id = parts[0]!.trim()
  for (let i = 1; i < parts.length; i++) {
    const m = /^\s*timeout\s*=\s*(\d{1,9})\s*$/i.exec(parts[i]!)
    if (m) return { id, timeout: Number(m[1]) }
  }
  return { id }
}

/** Split on a separator that is not inside a double-quoted string. */
function splitOutsideQuotes (value: string, sep: string): string[] {
  const out: string[] = []
  let quoted = false
  let start = 0
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (c === '"') quoted = !quoted
    else if (c === '\\' && quoted) i++
    else if (c === sep && !quoted) { out.push(value.slice(start, i)); start = i + 1 }
  }
  out.push(value.slice(start))
  return out
}
