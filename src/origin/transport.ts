/**
 * RTSP Transport header (RFC 2326 §12.39) for the origin: parse the client's alternatives,
 * pick the first one served (RTP/AVP/TCP interleaved, or RTP/AVP[/UDP] unicast with
 * client_port), and format the reply. Pure.
 */
export type TrackTransport =
  | { kind: 'tcp', rtpChannel: number, rtcpChannel: number }
  | { kind: 'udp', host: string, rtpPort: number, rtcpPort: number }

export interface TransportOffer {
  lower: 'tcp' | 'udp'
  /** Requested interleaved channels (TCP), when given. */
  interleaved?: [number, number]
  /** Client ports (UDP). */
  clientPort?: [number, number]
  /** The alternative as sent, for echoing parameters. */
  raw: string
}

function pair (v: string | undefined, max: number): [number, number] | undefined {
  if (v === undefined) return undefined
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v.trim())
  if (!m) return undefined
  const a = Number(m[1])
  const b = m[2] === undefined ? a + 1 : Number(m[2])
  if (a > max || b > max) return undefined
  return [a, b]
}

/** The first alternative the origin can serve; undefined → 461 Unsupported Transport. */
export function chooseTransport (header: string): TransportOffer | undefined {
  for (const alt of header.split(',')) {
    const parts = alt.trim().split(';').map((p) => p.trim()).filter((p) => p !== '')
    const spec = (parts[0] ?? '').toUpperCase()
    const params = new Map<string, string | undefined>()
    for (const p of parts.slice(1)) {
      const eq = p.indexOf('=')
      params.set((eq === -1 ? p : p.slice(0, eq)).toLowerCase(), eq === -1 ? undefined : p.slice(eq + 1))
    }
    if (params.has('multicast')) continue
    const mode = params.get('mode')?.replace(/"/g, '').toUpperCase()
    if (mode !== undefined && mode !== 'PLAY') continue
    if (spec === 'RTP/AVP/TCP') {
      const il = params.has('interleaved') ? pair(params.get('interleaved'), 255) : undefined
      if (params.has('interleaved') && il === undefined) continue
      return il === undefined ? { lower: 'tcp', raw: alt.trim() } : { lower: 'tcp', interleaved: il, raw: alt.trim() }
    }
    if (spec === 'RTP/AVP' || spec === 'RTP/AVP/UDP') {
      const cp = pair(params.get('client_port'), 65535)
      if (cp === undefined || cp[0] === 0) continue
      return { lower: 'udp', clientPort: cp, raw: alt.trim() }
    }
  }
  return undefined
}

export function formatTransport (t: TrackTransport, ssrc: number, serverPorts?: [number, number]): string {
  const ssrcHex = (ssrc >>> 0).toString(16).padStart(8, '0').toUpperCase()
  if (t.kind === 'tcp') return `RTP/AVP/TCP;unicast;interleaved=${t.rtpChannel}-${t.rtcpChannel};ssrc=${ssrcHex};mode="PLAY"`
  const sp = serverPorts === undefined ? '' : `;server_port=${serverPorts[0]}-${serverPorts[1]}`
  return `RTP/AVP;unicast;client_port=${t.rtpPort}-${t.rtcpPort}${sp};ssrc=${ssrcHex};mode="PLAY"`
}
