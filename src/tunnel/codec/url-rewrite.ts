/**
 * Mapping between the public RTSP URLs a tunnel client uses and a backend's URLs (reference
 * §3.2). URLs follow RFC 2326 §3.2 / RFC 3986:
 *
 *   rtsp_URL  = "rtsp:" "//" authority [ path-abempty ] [ "?" query ]   (parsed by rtsp-url.ts)
 *   authority = [ userinfo "@" ] host [ ":" port ]             ; port defaults to 554
 *
 * Where URLs appear (and are rewritten):
 *
 *   C→B  Request-URI                                           (public → backend)
 *   B→C  Content-Base, Content-Location, Location              (backend → public)
 *   B→C  RTP-Info = 1#( "url=" ( URL / quoted-URL ) *( ";" param ) )   RFC 2326 §12.33 / 7826 §18.45
 *   B→C  SDP (RFC 8866) session and media "a=control:" attributes, absolute URLs only (sdp/rewrite.ts)
 *
 * Never rewritten: Authorization (the digest `uri=` is hashed with the client's password),
 * relative controls (`trackID=1`, `stream=0`, `*`).
 *
 * Matching is on the path prefix for client URLs (clients may use any host, and VLC omits the
 * tunnel port so its URL implies 554) and on authority + prefix for backend URLs.
 */
import { getHeader, type RtspRequest, type RtspResponse } from './rtsp-message.js'
import { isAbsoluteUrl, parseRtspUrl, type RtspUrl } from './rtsp-url.js'
import { rewriteSdp } from './sdp/rewrite.js'

/** Default RTSP port (RFC 2326 §3.2). */
export const RTSP_DEFAULT_PORT = 554

export type UrlMap = (url: string) => string

function parse (url: string): RtspUrl | null {
  const r = parseRtspUrl(url)
  return r.ok ? r.url : null
}

/** "/live/" → "/live"; "" and "/" → "". */
function normalisePrefix (path: string): string { return path.replace(/\/+$/, '') }

function hasPrefix (path: string, prefix: string): boolean {
  return prefix === '' || path === prefix || path.startsWith(prefix + '/')
}

export interface UrlMapperOptions {
  /** e.g. "rtsp://gw.example.net/live" (path prefix may be empty or "/"). */
  publicBase: string
  /** e.g. "rtsp://10.0.0.5:8554/origin". */
  backendBase: string
  /**
   * More authorities the backend may use for itself in its replies (e.g. live555 writes its
   * socket IP into Content-Base even when reached by name). Same matching as backendBase.
   */
  backendAliases?: string[]
}

export class UrlMapper {
  readonly #public: RtspUrl
  readonly #publicPrefix: string
  readonly #backend: RtspUrl
  readonly #backendPrefix: string
  readonly #backendAuthorities: Array<{ host: string, port: number }>

  constructor (opts: UrlMapperOptions) {
    const pub = parse(opts.publicBase)
    const back = parse(opts.backendBase)
    if (pub === null || pub.query !== '' || pub.fragment !== '') {
      throw new TypeError(`publicBase is not an rtsp://authority/prefix URL: '${opts.publicBase}'`)
    }
    if (back === null || back.query !== '' || back.fragment !== '') {
      throw new TypeError(`backendBase is not an rtsp://authority/prefix URL: '${opts.backendBase}'`)
    }
    this.#public = pub
    this.#publicPrefix = normalisePrefix(pub.path)
    this.#backend = back
    this.#backendPrefix = normalisePrefix(back.path)
    this.#backendAuthorities = [{ host: back.host, port: back.port }]
    for (const alias of opts.backendAliases ?? []) {
      const a = parse(`rtsp://${alias}`)
      if (a === null || a.path !== '' || a.query !== '' || a.userinfo !== '') {
        throw new TypeError(`bad backend alias authority '${alias}'`)
      }
      this.#backendAuthorities.push({ host: a.host, port: a.port })
    }
  }

  /** The backend authority as configured (for leak checks and Host-like uses). */
  get backendAuthority (): string { return this.#backend.authority }

  /** Public → backend: any rtsp URL under the public prefix, whatever its authority. */
  toBackend (url: string): string {
    const u = parse(url)
    if (u === null || !hasPrefix(u.path, this.#publicPrefix)) return url
    const rest = u.path.slice(this.#publicPrefix.length)
    return `${this.#backend.scheme}://${this.#backend.authority}${this.#backendPrefix}${rest}${u.query}${u.fragment}`
  }

  /** Backend → public: rtsp URLs on the backend's authority under the backend prefix. */
  toPublic (url: string): string {
    const u = parse(url)
    if (u === null || !hasPrefix(u.path, this.#backendPrefix)) return url
    if (!this.#backendAuthorities.some((a) => a.host === u.host && a.port === u.port)) return url
    const rest = u.path.slice(this.#backendPrefix.length)
    return `${this.#public.scheme}://${this.#public.authority}${this.#publicPrefix}${rest}${u.query}${u.fragment}`
  }
}

/**
 * Rewrite every `url=` of an RTP-Info value. An unquoted url ends at `;seq=`, `;rtptime=`,
 * `;ssrc=`, whitespace, a comma starting the next `url=` entry, or the end; a quoted url
 * (RTSP 2.0) ends at its closing quote.
 */
export function rewriteRtpInfo (value: string, map: UrlMap): string {
  return value.replace(
    /(^|,)([ \t]*url[ \t]*=[ \t]*)(?:"([^"]*)"|([^\s"]*?)(?=;[ \t]*(?:seq|rtptime|ssrc)[ \t]*=|[ \t]*,[ \t]*url[ \t]*=|\s|$))/gi,
    (whole, sep: string, lead: string, quoted: string | undefined, bare: string | undefined) => {
      if (quoted !== undefined) return `${sep}${lead}"${map(quoted)}"`
      if (bare === undefined || bare === '') return whole
      return `${sep}${lead}${map(bare)}`
    }
  )
}

const URL_HEADERS = new Set(['content-base', 'content-location', 'location'])

/**
 * Backend→client response: Content-Base, Content-Location, Location, every RTP-Info, and the
 * SDP body. Content-Length is updated here too (serializeMessage recomputes it anyway).
 */
export function rewriteResponseUrls (msg: RtspResponse, map: UrlMap): void {
  for (let i = 0; i < msg.headers.length; i++) {
    const [name, value] = msg.headers[i]!
    const lower = name.toLowerCase()
    let next = value
    if (URL_HEADERS.has(lower)) next = map(value.trim())
    else if (lower === 'rtp-info') next = rewriteRtpInfo(value, map)
    if (next !== value) msg.headers[i] = [name, next]
  }
  const type = getHeader(msg, 'content-type')
  if (type !== undefined && type.split(';')[0]!.trim().toLowerCase() === 'application/sdp' && msg.body.length > 0) {
    const body = rewriteSdp(msg.body, map)
    if (body !== msg.body) {
      msg.body = body
      for (let i = 0; i < msg.headers.length; i++) {
        if (msg.headers[i]![0].toLowerCase() === 'content-length') {
          msg.headers[i] = [msg.headers[i]![0], String(body.length)]
        }
      }
    }
  }
}

/** Client→backend request: the Request-URI only (`*` and relative URIs stay). Never Authorization. */
export function rewriteRequestUrls (msg: RtspRequest, map: UrlMap): void {
  if (isAbsoluteUrl(msg.uri)) msg.uri = map(msg.uri)
}

/**
 * True when `bytes` mention the authority (case-insensitive), or, for the default port, its
 * bare host right after "//" (as in `rtsp://10.0.0.5/x`). For tests and debug checks.
 */
export function findBackendAuthorityLeak (bytes: Buffer, authority: string): boolean {
  const text = bytes.toString('latin1').toLowerCase()
  const auth = authority.toLowerCase()
  if (text.includes(auth)) return true
  const a = parse(`rtsp://${auth}`)
  if (a === null || a.port !== RTSP_DEFAULT_PORT) return false
  const needle = `//${a.host}`
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + 1)) {
    const next = text[i + needle.length]
    if (next === undefined || !/[a-z0-9.\-:]/.test(next) ||
        (next === ':' && text.startsWith(`:${RTSP_DEFAULT_PORT}`, i + needle.length))) { return true }
  }
  return false
}
