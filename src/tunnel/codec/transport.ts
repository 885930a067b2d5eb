/**
 * The one codec of the RTSP Transport and Session headers (RFC 2326 §12.39, §12.37; RFC 7826 §18.54),
 * for the proxy session, the live fan-out and the embedded origin alike:
 *
 *   Transport          = "Transport" ":" 1#transport-spec
 *   transport-spec     = transport-protocol "/" profile [ "/" lower-transport ] *( ";" parameter )
 *   parameter          = "unicast" / "multicast" / "destination" [ "=" address ]
 *                      / "interleaved" "=" channel [ "-" channel ] / "client_port" "=" port [ "-" port ]
 *                      / "mode" "=" <"> 1#mode <"> / … (others passed through)
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

export interface TransportParam {
  /** Lower case, trimmed. */
  name: string
  /** Trimmed; undefined for a flag (`unicast`). */
  value: string | undefined
  /** As written, trimmed. */
  raw: string
}

/** One transport-spec of a Transport header. */
export interface TransportSpec {
  /** transport-protocol/profile[/lower-transport] as written, trimmed. */
  protocol: string
  /** Non-empty parameters in order. */
  params: TransportParam[]
  /** The transport-spec as sent, trimmed. */
  raw: string
}

/** Every transport-spec of a Transport value, in order (commas and semicolons inside quotes are kept). */
export function parseTransport (value: string): TransportSpec[] {
  return splitOutsideQuotes(value, ',').map(alt => {
    const parts = splitOutsideQuotes(alt, ';').map(p => p.trim())
    const params: TransportParam[] = []
    for (const raw of parts.slice(1)) {
      if (raw === '') continue
      const eq = raw.indexOf('=')
      const name = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase()
      params.push({ name, value: eq === -1 ? undefined : raw.slice(eq + 1).trim(), raw })
    }
    return { protocol: parts[0]!, params, raw: alt.trim() }
  })
}

/** The last value of parameter `name` (lower case) of a spec; undefined when absent or a flag. */
function paramValue (spec: TransportSpec, name: string): string | undefined {
  for (let i = spec.params.length - 1; i >= 0; i--) if (spec.params[i]!.name === name) return spec.params[i]!.value
  return undefined
}

function hasParam (spec: TransportSpec, name: string): boolean {
  return spec.params.some(p => p.name === name)
}

/** `a` or `a-b` (whitespace around the dash allowed), each of at most `digits` digits; null when not of that form. */
function numberRange (value: string, digits: number): [number, number | undefined] | null {
  const m = new RegExp(`^(\\d{1,${digits}})(?:\\s*-\\s*(\\d{1,${digits}}))?$`).exec(value)
  return m === null ? null : [Number(m[1]), m[2] === undefined ? undefined : Number(m[2])]
}

/**
 * Keep the TCP alternatives of a Transport list, without `destination`. Returns null when no
 * TCP alternative remains (the caller answers 461 Unsupported Transport).
 */
export function filterTcpTransports (value: string): string | null {
  if (value.length > MAX_TRANSPORT_VALUE) return null
  const kept = parseTransport(value)
    .filter(spec => TCP_TRANSPORT_PROTOCOLS.has(spec.protocol.toLowerCase()))
    .map(spec => [spec.protocol, ...spec.params.filter(p => !DROPPED_TRANSPORT_PARAMS.has(p.name)).map(p => p.raw)])
    .map(parts => parts.join(';'))
  return kept.length === 0 ? null : kept.join(',')
}

/**
 * The `interleaved=a-b` channels of the first transport-spec that has them. A single channel
 * (`interleaved=4`) gives [4, 4]. Null when absent or out of 0–255.
 */
export function parseInterleaved (value: string): [number, number] | null {
  for (const spec of parseTransport(value)) {
    for (const p of spec.params) {
      const r = p.name === 'interleaved' && p.value !== undefined ? numberRange(p.value, 3) : null
      if (r === null) continue
      const [a, b = a] = r
      return a > 255 || b > 255 ? null : [a, b]
    }
  }
  return null
}

/** Where one track's packets go: interleaved channels on the RTSP connection, or UDP ports. */
export type TrackTransport =
  | { kind: 'tcp', rtpChannel: number, rtcpChannel: number }
  | { kind: 'udp', host: string, rtpPort: number, rtcpPort: number }

/** An alternative a server can serve: RTP/AVP over TCP interleaved, or over UDP to client ports. */
export interface TransportOffer {
  lower: 'tcp' | 'udp'
  /** Requested interleaved channels (TCP), when given; a single channel n means n, n+1. */
  interleaved?: [number, number]
  /** Client ports (UDP); a single port n means n, n+1. */
  clientPort?: [number, number]
  /** The alternative as sent, for echoing parameters. */
  raw: string
}

/** A channel or port pair: `a-b`, or `a` meaning a, a+1; undefined when malformed or above `max`. */
function pairOf (value: string | undefined, max: number): [number, number] | undefined {
  const r = value === undefined ? null : numberRange(value, 5)
  if (r === null) return undefined
  const [a, b = a + 1] = r
  return a > max || b > max ? undefined : [a, b]
}

/**
 * The first unicast PLAY alternative a server of RTP/AVP can serve (TCP interleaved, or UDP with
 * client_port); undefined → 461 Unsupported Transport.
 */
export function chooseTransport (header: string): TransportOffer | undefined {
  for (const spec of parseTransport(header)) {
    if (hasParam(spec, 'multicast')) continue
    const mode = paramValue(spec, 'mode')?.replace(/"/g, '').toUpperCase()
    if (mode !== undefined && mode !== 'PLAY') continue
    const protocol = spec.protocol.toUpperCase()
    if (protocol === 'RTP/AVP/TCP') {
      if (!hasParam(spec, 'interleaved')) return { lower: 'tcp', raw: spec.raw }
      const il = pairOf(paramValue(spec, 'interleaved'), 255)
      if (il === undefined) continue
      return { lower: 'tcp', interleaved: il, raw: spec.raw }
    }
    if (protocol === 'RTP/AVP' || protocol === 'RTP/AVP/UDP') {
      const cp = pairOf(paramValue(spec, 'client_port'), 65535)
      if (cp === undefined || cp[0] === 0) continue
      return { lower: 'udp', clientPort: cp, raw: spec.raw }
    }
  }
  return undefined
}

function ssrcHex (ssrc: number): string {
  return (ssrc >>> 0).toString(16).padStart(8, '0').toUpperCase()
}

/**
 * A Transport value for media interleaved on `channels`: `<protocol>;unicast;interleaved=a-b`, then
 * `;ssrc=XXXXXXXX` and `;mode="PLAY"` when given (a server's reply).
 */
export function formatInterleavedTransport (
  channels: readonly [number, number], opts: { protocol?: string, ssrc?: number, mode?: 'PLAY' } = {}
): string {
  return `${opts.protocol ?? 'RTP/AVP/TCP'};unicast;interleaved=${channels[0]}-${channels[1]}` +
    (opts.ssrc === undefined ? '' : `;ssrc=${ssrcHex(opts.ssrc)}`) +
    (opts.mode === undefined ? '' : `;mode="${opts.mode}"`)
}

/** A server's Transport reply for a track it serves. */
export function formatTransport (t: TrackTransport, ssrc: number, serverPorts?: [number, number]): string {
  if (t.kind === 'tcp') return formatInterleavedTransport([t.rtpChannel, t.rtcpChannel], { ssrc, mode: 'PLAY' })
  const sp = serverPorts === undefined ? '' : `;server_port=${serverPorts[0]}-${serverPorts[1]}`
  return `RTP/AVP;unicast;client_port=${t.rtpPort}-${t.rtcpPort}${sp};ssrc=${ssrcHex(ssrc)};mode="PLAY"`
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
