/**
 * Request-URI and Range parsing for the origin (pure).
 *
 *   rtsp://HOST[:PORT]/<name>[.ext][/trackID=N]       video on demand
 *   rtsp://HOST[:PORT]/live/<name>[.ext][/trackID=N]  the file looped as a live channel
 */
export interface Target {
  /** Stream name as requested (with or without extension). */
  name: string
  live: boolean
  /** 1-based track number from a trailing `trackID=N`. */
  track?: number
  /** The aggregate URL as the client spelled it, without a trailing slash or track part. */
  base: string
}

/** undefined: not an RTSP URL or path we can read (→ 400). */
export function parseTarget (uri: string): Target | undefined {
  let path: string
  let prefixLen: number
  const m = /^rtsps?:\/\/[^/?#]*/i.exec(uri)
  if (m) {
    path = uri.slice(m[0].length)
    prefixLen = m[0].length
  } else if (uri.startsWith('/')) {
    path = uri
    prefixLen = 0
  } else {
    return undefined
  }
  const q = path.search(/[?#]/)
  if (q !== -1) path = path.slice(0, q)
  let segs: string[]
  try {
    segs = path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s))
  } catch {
    return undefined
  }
  let track: number | undefined
  const last = segs[segs.length - 1]
  const tm = last === undefined ? null : /^trackID=(\d{1,3})$/i.exec(last)
  if (tm) {
    track = Number(tm[1])
    segs.pop()
  }
  let live = false
  if (segs[0] === 'live' && segs.length > 1) {
    live = true
    segs.shift()
  }
  const name = segs.join('/')
  // Base: the original spelling up to the end of the stream name.
  let base = q === -1 ? uri : uri.slice(0, prefixLen + q)
  base = base.replace(/\/+$/, '')
  if (track !== undefined) base = base.replace(/\/*trackID=\d+$/i, '')
  return track === undefined ? { name, live, base } : { name, live, track, base }
}

export interface NptRange {
  /** Start in seconds; undefined = "now" (live) or the current position. */
  start?: number
  end?: number
}

function nptTime (s: string): number | undefined | 'now' {
  if (s === 'now') return 'now'
  if (/^\d+(\.\d*)?$/.test(s)) return Number(s)
  const m = /^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d*)?)$/.exec(s)
  if (m) return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])
  return undefined
}

/** Parse `Range: npt=...` (RFC 2326 §3.6, §12.29). undefined → 457 Invalid Range. */
export function parseNptRange (value: string): NptRange | undefined {
  const v = value.split(';')[0]!.trim()
  const m = /^npt\s*=\s*([^-\s]*)\s*-\s*(\S*)$/i.exec(v)
  if (!m) return undefined
  const a = m[1]!
  const b = m[2]!
  const start = a === '' ? 0 : nptTime(a)
  const end = b === '' ? undefined : nptTime(b)
  if (start === undefined || end === 'now') return undefined
  if (b !== '' && end === undefined) return undefined
  if (typeof end === 'number' && typeof start === 'number' && end < start) return undefined
  const r: NptRange = {}
  if (typeof start === 'number') r.start = start
  if (typeof end === 'number') r.end = end
  return r
}
