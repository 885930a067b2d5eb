/**
 * What the live fan-out needs from a backend's SDP (RFC 8866) and PLAY reply (pure).
 *
 *   media     = "m=" media SP port SP proto SP fmt ...          → one track per m= section
 *   rtpmap    = "a=rtpmap:" pt SP encoding "/" clock-rate ["/" params]
 *   control   = "a=control:" URL (absolute, or relative to the Content-Base; "*" = the base)
 *   range     = "a=range:npt=" ( "now-" | start "-" [ end ] )   (RFC 2326 §C.1.5)
 *   type      = "a=type:broadcast"                              (RFC 8866 §6.9)
 *
 * Live verdict (route `live: auto`): live when the SDP says `a=range:npt=now-` or
 * `a=type:broadcast`; VOD when it has a finite `a=range` (an end time); otherwise undecided
 * until the PLAY reply: `Range: npt=now-` there means live.
 */
import type { KeyMode } from './gop-cache.js'

export interface SdpTrack {
  index: number
  media: string
  payloadType: number
  /** Encoding name in lower case ('h264', 'mpeg4-generic', ''). */
  codec: string
  clockRate: number
  /** a=control of the m= section as written ('' when absent). */
  control: string
}

export interface SdpInfo {
  tracks: SdpTrack[]
  /** Session-level a=control ('' when absent). */
  sessionControl: string
  range: 'now' | 'finite' | 'open' | 'none'
  broadcast: boolean
}

/** Static payload types of RFC 3551 with their clock rates (the ones a live camera may use). */
const STATIC_CLOCK: Record<number, [string, number]> = {
  0: ['pcmu', 8000], 8: ['pcma', 8000], 9: ['g722', 8000], 10: ['l16', 44100], 11: ['l16', 44100],
  14: ['mpa', 90000], 26: ['jpeg', 90000], 32: ['mpv', 90000], 33: ['mp2t', 90000]
}

export function parseSdp (text: string): SdpInfo {
  const tracks: SdpTrack[] = []
  let sessionControl = ''
  let range: SdpInfo['range'] = 'none'
  let broadcast = false
  let cur: SdpTrack | null = null
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line.startsWith('m=')) {
      const f = line.slice(2).split(/\s+/)
      const pt = Number(f[3])
      const st = STATIC_CLOCK[pt]
      cur = { index: tracks.length, media: f[0] ?? '', payloadType: Number.isInteger(pt) ? pt : -1, codec: st?.[0] ?? '', clockRate: st?.[1] ?? 90000, control: '' }
      tracks.push(cur)
      continue
    }
    if (line.startsWith('a=control:')) {
      const v = line.slice('a=control:'.length).trim()
      if (cur === null) sessionControl = v
      else cur.control = v
      continue
    }
    if (line.startsWith('a=rtpmap:') && cur !== null) {
      const m = /^a=rtpmap:(\d+)\s+([^/\s]+)\/(\d+)/.exec(line)
      if (m !== null && Number(m[1]) === cur.payloadType) {
        cur.codec = m[2]!.toLowerCase()
        cur.clockRate = Number(m[3])
      }
      continue
    }
    if (line.startsWith('a=range:') && cur === null) {
      const v = line.slice('a=range:'.length).trim().toLowerCase()
      if (/^npt\s*=\s*now\s*-/.test(v)) range = 'now'
      else if (/^npt\s*=\s*[\d.:]+\s*-\s*[\d.:]+/.test(v)) range = 'finite'
      else if (/^npt\s*=/.test(v)) range = 'open'
      else if (/-\s*\S/.test(v)) range = 'finite' // smpte/clock ranges with an end
      continue
    }
    if (line.toLowerCase() === 'a=type:broadcast') broadcast = true
  }
  return { tracks, sessionControl, range, broadcast }
}

/** Live / VOD / undecided from the SDP alone. */
export function sdpVerdict (s: SdpInfo): 'live' | 'vod' | 'unknown' {
  if (s.range === 'now' || s.broadcast) return 'live'
  if (s.range === 'finite') return 'vod'
  return 'unknown'
}

/** Live when a PLAY reply's Range says npt=now- (or has no end at all). */
export function playRangeIsLive (range: string | undefined): boolean {
  if (range === undefined) return false
  const v = range.trim().toLowerCase()
  return /^npt\s*=\s*now\s*-/.test(v)
}

/** Resolve an a=control against a base URL (RFC 2326 §C.1.1). */
export function resolveControl (base: string, control: string): string {
  if (control === '' || control === '*') return base
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(control)) return control
  if (control.startsWith('/')) {
    const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)/i.exec(base)
    return m === null ? control : m[1]! + control
  }
  return base.endsWith('/') ? base + control : `${base}/${control}`
}

/** How keyframes are found on a path: from its first H.264 / H.265 video track. */
export function keyModeOf (s: SdpInfo): { mode: KeyMode, keyTrack: number } {
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
