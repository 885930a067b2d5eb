/**
 * The one SDP parser (RFC 8866), read-only: what the gateway needs from a backend's SDP, read with
 * sdp-transform's grammar. Live verdicts and control URLs come with it.
 *
 *   media     = "m=" media SP port SP proto SP fmt ...          → one track per m= section
 *   rtpmap    = "a=rtpmap:" pt SP encoding "/" clock-rate ["/" params]
 *   fmtp      = "a=fmtp:" pt SP parameters
 *   control   = "a=control:" URL (absolute, or relative to the Content-Base; "*" = the base)
 *   range     = "a=range:npt=" ( "now-" | start "-" [ end ] )   (RFC 2326 §C.1.5)
 *   type      = "a=type:broadcast"                              (RFC 8866 §6.9)
 *
 * Live verdict (route `live: auto`): live when the SDP says `a=range:npt=now-` or
 * `a=type:broadcast`; VOD when it has a finite `a=range` (an end time); otherwise undecided
 * until the PLAY reply: `Range: npt=now-` there means live.
 */
import { parse as parseGrammar, type MediaDescription } from 'sdp-transform'
import { isAbsoluteUrl } from '../rtsp-url.js'

export interface SdpTrack {
  index: number
  media: string
  payloadType: number
  /** Encoding name in lower case ('h264', 'mpeg4-generic', ''). */
  codec: string
  clockRate: number
  /** a=control of the m= section as written ('' when absent). */
  control: string
  /** The a=fmtp parameters of the track's payload type ('' when absent). */
  fmtp: string
}

export type SdpRange = 'now' | 'finite' | 'open' | 'none'

export interface SdpInfo {
  tracks: SdpTrack[]
  /** Session-level a=control ('' when absent). */
  sessionControl: string
  range: SdpRange
  broadcast: boolean
}

/** Static payload types of RFC 3551 with their clock rates (the ones a live camera may use). */
const STATIC_CLOCK: Record<number, [string, number]> = {
  0: ['pcmu', 8000],
  8: ['pcma', 8000],
  9: ['g722', 8000],
  10: ['l16', 44100],
  11: ['l16', 44100],
  14: ['mpa', 90000],
  26: ['jpeg', 90000],
  32: ['mpv', 90000],
  33: ['mp2t', 90000]
}

/** Clock rate assumed for a dynamic payload type without an rtpmap (every video codec's). */
const DEFAULT_CLOCK = 90000

/**
 * Lines as the grammar expects them: trimmed, and the m= and a=rtpmap: lines with single spaces
 * and no port count (`m=video 0/2 …`), which sdp-transform's expressions do not allow.
 */
function forGrammar (text: string): string {
  return text.split(/\r?\n/).map(raw => {
    const line = raw.trim()
    if (line.startsWith('m=')) {
      const f = line.slice(2).split(/\s+/)
      if (f[1] !== undefined) f[1] = f[1].replace(/\/.*$/, '')
      return 'm=' + f.join(' ')
    }
    if (line.startsWith('a=rtpmap:')) return line.replace(/^a=rtpmap:(\S*)\s+/, 'a=rtpmap:$1 ')
    return line
  }).join('\r\n')
}

/** Attribute lines the grammar does not know (`a=range:…`, `a=type:…`), without their `a=`. */
function unknownAttributes (section: { invalid?: Array<{ value: string }> }): string[] {
  return (section.invalid ?? []).map(x => String(x.value))
}

function rangeOf (value: string): SdpRange | null {
  const v = value.trim().toLowerCase()
  if (/^npt\s*=\s*now\s*-/.test(v)) return 'now'
  if (/^npt\s*=\s*[\d.:]+\s*-\s*[\d.:]+/.test(v)) return 'finite'
  if (/^npt\s*=/.test(v)) return 'open'
  if (/-\s*\S/.test(v)) return 'finite' // smpte/clock ranges with an end
  return null
}

/** An rtpmap's or fmtp's payload type (as the grammar read it: a number, or digits it kept as text) is `pt`. */
function samePayload (value: number | string, pt: number): boolean {
  return String(value) !== '' && Number(value) === pt
}

function trackOf (m: MediaDescription, index: number): SdpTrack {
  const first = String(m.payloads ?? '').trim().split(' ')[0]!
  const pt = first === '' ? NaN : Number(first)
  const payloadType = Number.isInteger(pt) ? pt : -1
  const st = STATIC_CLOCK[payloadType]
  let codec = st?.[0] ?? ''
  let clockRate = st?.[1] ?? DEFAULT_CLOCK
  for (const r of m.rtp) {
    if (!samePayload(r.payload, payloadType) || r.codec === '' || String(r.rate ?? '') === '') continue
    codec = String(r.codec).toLowerCase()
    clockRate = Number(r.rate)
  }
  const fmtp = m.fmtp.filter(f => samePayload(f.payload, payloadType)).pop()
  return {
    index,
    media: String(m.type ?? ''),
    payloadType,
    codec,
    clockRate,
    control: m.control === undefined ? '' : String(m.control).trim(),
    fmtp: fmtp === undefined ? '' : String(fmtp.config).trim()
  }
}

export function parseSdp (text: string): SdpInfo {
  const s = parseGrammar(forGrammar(text))
  const tracks = s.media.map(trackOf)
  let range: SdpRange = 'none'
  for (const a of unknownAttributes(s)) {
    if (a.startsWith('range:')) range = rangeOf(a.slice('range:'.length)) ?? range
  }
  const broadcast = [s, ...s.media].some(m => unknownAttributes(m).some(a => a.toLowerCase() === 'type:broadcast'))
  return { tracks, sessionControl: s.control === undefined ? '' : String(s.control).trim(), range, broadcast }
}

/** Live / VOD / undecided from the SDP alone. */
export function sdpVerdict (s: SdpInfo): 'live' | 'vod' | 'unknown' {
  if (s.range === 'now' || s.broadcast) return 'live'
  if (s.range === 'finite') return 'vod'
  return 'unknown'
}

/** Live when a PLAY reply's Range says npt=now-. */
export function playRangeIsLive (range: string | undefined): boolean {
  if (range === undefined) return false
  const v = range.trim().toLowerCase()
  return /^npt\s*=\s*now\s*-/.test(v)
}

/** Resolve an a=control against a base URL (RFC 2326 §C.1.1). */
export function resolveControl (base: string, control: string): string {
  if (control === '' || control === '*') return base
  if (isAbsoluteUrl(control)) return control
  if (control.startsWith('/')) {
    const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)/i.exec(base)
    return m === null ? control : m[1]! + control
  }
  return base.endsWith('/') ? base + control : `${base}/${control}`
}

/** How keyframes are found on a path: from its first H.264 / H.265 video track. */
export function keyModeOf (s: SdpInfo): { mode: 'h264' | 'h265' | 'any', keyTrack: number } {
  const v = s.tracks.find(t => t.media === 'video' && (t.codec === 'h264' || t.codec === 'h265'))
  if (v !== undefined) return { mode: v.codec === 'h264' ? 'h264' : 'h265', keyTrack: v.index }
  const anyVideo = s.tracks.find(t => t.media === 'video')
  return { mode: 'any', keyTrack: anyVideo?.index ?? 0 }
}

/** Two SDPs describe the same media layout (track count, kinds, codecs, clock rates). */
export function sameLayout (a: SdpInfo, b: SdpInfo): boolean {
  return a.tracks.length === b.tracks.length && a.tracks.every((t, i) => {
    const u = b.tracks[i]!
    return t.media === u.media && t.codec === u.codec && t.clockRate === u.clockRate && t.payloadType === u.payloadType
  })
}
