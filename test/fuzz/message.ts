/**
 * The shape the grammars build and the token-level mutations edit: an HTTP or RTSP message as a
 * start line, header lines (each with its own separator and line end) and a body. Keeping the
 * line ends and separators as data is what lets a mutation give one line an odd ending, fold a
 * value or move a header to another message, instead of flipping bits at random.
 */

export interface HeaderLine {
  name: string
  /** What stands between name and value (normally ": "). */
  sep: string
  value: string
  eol: string
}

export interface TextMessage {
  /** Start-line tokens (method, target, version or version, status, reason). */
  start: string[]
  /** Between the start-line tokens (normally " "). */
  startSep: string
  startEol: string
  headers: HeaderLine[]
  /** The line end of the empty line that ends the head. */
  blank: string
  body: Buffer
}

export function header (name: string, value: string): HeaderLine {
  return { name, sep: ': ', value, eol: '\r\n' }
}

export function message (start: string[], headers: HeaderLine[] = [], body: Buffer = Buffer.alloc(0)): TextMessage {
  return { start, startSep: ' ', startEol: '\r\n', headers, blank: '\r\n', body }
}

export function headText (m: TextMessage): string {
  let s = m.start.join(m.startSep) + m.startEol
  for (const h of m.headers) s += h.name + h.sep + h.value + h.eol
  return s + m.blank
}

export function serialize (m: TextMessage): Buffer {
  const head = Buffer.from(headText(m), 'latin1')
  return m.body.length === 0 ? head : Buffer.concat([head, m.body])
}

export function cloneMessage (m: TextMessage): TextMessage {
  return { ...m, start: [...m.start], headers: m.headers.map(h => ({ ...h })), body: Buffer.from(m.body) }
}

/** A stream unit: a message, or the raw bytes of one `$` frame. */
export type StreamUnit = TextMessage | Buffer

/** Split captured bytes into messages (heads end at a blank line, bodies by Content-Length) and `$` frames. */
export function parseStream (bytes: Buffer): StreamUnit[] {
  const units: StreamUnit[] = []
  let off = 0
  while (off < bytes.length) {
    if (bytes[off] === 0x24) {
      const end = Math.min(bytes.length, off + 4 + (off + 4 <= bytes.length ? bytes.readUInt16BE(off + 2) : 0))
      units.push(Buffer.from(bytes.subarray(off, end)))
      off = end
      continue
    }
    const end = bytes.indexOf('\r\n\r\n', off, 'latin1')
    if (end === -1) { units.push(Buffer.from(bytes.subarray(off))); break }
    const lines = bytes.toString('latin1', off, end).split('\r\n')
    const headers: HeaderLine[] = lines.slice(1).map(l => {
      const c = l.indexOf(':')
      return c === -1
        ? { name: l, sep: '', value: '', eol: '\r\n' }
        : { name: l.slice(0, c), sep: ': ', value: l.slice(c + 1).trim(), eol: '\r\n' }
    })
    const cl = Number(headers.find(h => h.name.toLowerCase() === 'content-length')?.value ?? 0)
    const bodyStart = end + 4
    const len = Number.isInteger(cl) && cl > 0 ? Math.min(cl, bytes.length - bodyStart) : 0
    units.push({
      start: lines[0]!.split(' '),
      startSep: ' ',
      startEol: '\r\n',
      headers,
      blank: '\r\n',
      body: Buffer.from(bytes.subarray(bodyStart, bodyStart + len))
    })
    off = bodyStart + len
  }
  return units
}

export function isMessage (u: StreamUnit): u is TextMessage {
  return !Buffer.isBuffer(u)
}

export function unitBytes (u: StreamUnit): Buffer {
  return isMessage(u) ? serialize(u) : u
}

export function setHeader (m: TextMessage, name: string, value: string): void {
  const h = m.headers.find(x => x.name.toLowerCase() === name.toLowerCase())
  if (h !== undefined) h.value = value
  else m.headers.push(header(name, value))
}
