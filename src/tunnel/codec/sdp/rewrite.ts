/**
 * Byte-exact edits of an SDP body: only the matched bytes change, every other byte and line ending
 * stays as the backend wrote it (a reformatted SDP would change lengths the captures check). Any
 * size (the demuxer's body limit bounds it): an edit skipped for size would leak a backend address.
 */
import { isAbsoluteUrl } from '../rtsp-url.js'

/**
 * `body` with each match of `pattern` (global) replaced by `edit(match)`, read as latin1 so every
 * byte is one character; the same Buffer when nothing changed.
 */
export function editSdp (body: Buffer, pattern: RegExp, edit: (match: RegExpExecArray) => string): Buffer {
  if (body.length === 0) return body
  const text = body.toString('latin1')
  let out = ''
  let last = 0
  let changed = false
  for (const m of text.matchAll(pattern)) {
    const next = edit(m)
    if (next === m[0]) continue
    out += text.slice(last, m.index) + next
    last = m.index + m[0].length
    changed = true
  }
  return changed ? Buffer.from(out + text.slice(last), 'latin1') : body
}

/** Absolute `a=control:` URLs (session and media) mapped by `map`; relative controls stay. */
export function rewriteSdp (body: Buffer, map: (url: string) => string): Buffer {
  return editSdp(body, /^(a=control:[ \t]*)([^\r\n]*?)([ \t]*)(?=\r|\n|$)/gm, m => {
    const url = m[2]!
    return isAbsoluteUrl(url) ? `${m[1]!}${map(url)}${m[3]!}` : m[0]
  })
}

/**
 * Hide a backend address in SDP `o=` and `c=` lines (RFC 8866 §5.2, §5.7: `IN IP4 <addr>`):
 * DSS writes its own IP into `o=`, which a tunnel client never needs (media is interleaved).
 * The address becomes 0.0.0.0 (or :: for IP6).
 */
export function maskSdpAddress (body: Buffer, host: string): Buffer {
  if (host === '') return body
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return editSdp(body, /^([oc]=[^\r\n]*?IN[ \t]+)(IP[46])([ \t]+)([^ \t\r\n/]+)/gm, m => {
    const type = m[2]!
    return m[4]!.toLowerCase() === h ? `${m[1]!}${type}${m[3]!}${type === 'IP6' ? '::' : '0.0.0.0'}` : m[0]
  })
}
