/**
 * RTSP/1.0 messages (RFC 2326 §6, §7): pure data types, header helpers and the serializer.
 *
 *   Request  = Method SP Request-URI SP RTSP-Version CRLF *(header CRLF) CRLF [ body ]
 *   Response = RTSP-Version SP Status-Code SP Reason-Phrase CRLF *(header CRLF) CRLF [ body ]
 *
 * Headers are kept as an ordered list with their original spelling, so a message that is
 * parsed and serialized again without edits is byte-identical apart from line-ending
 * normalisation (bare LF becomes CRLF).
 */
export type Header = [name: string, value: string]

export interface RtspRequest {
  kind: 'request'
  method: string
  uri: string
  version: string
  headers: Header[]
  body: Buffer
}

export interface RtspResponse {
  kind: 'response'
  version: string
  status: number
  reason: string
  headers: Header[]
  body: Buffer
}

export type RtspMessage = RtspRequest | RtspResponse

/** First value of a header, matched case-insensitively. */
export function getHeader (msg: { headers: Header[] }, name: string): string | undefined {
  const lower = name.toLowerCase()
  for (const [k, v] of msg.headers) if (k.toLowerCase() === lower) return v
  return undefined
}

/** Replace every occurrence of a header by one value (appended when absent). */
export function setHeader (msg: { headers: Header[] }, name: string, value: string): void {
  const lower = name.toLowerCase()
  const i = msg.headers.findIndex(([k]) => k.toLowerCase() === lower)
  if (i === -1) { msg.headers.push([name, value]); return }
  msg.headers[i] = [msg.headers[i]![0], value]
  for (let j = msg.headers.length - 1; j > i; j--) {
    if (msg.headers[j]![0].toLowerCase() === lower) msg.headers.splice(j, 1)
  }
}

export function removeHeader (msg: { headers: Header[] }, name: string): void {
  const lower = name.toLowerCase()
  for (let j = msg.headers.length - 1; j >= 0; j--) {
    if (msg.headers[j]![0].toLowerCase() === lower) msg.headers.splice(j, 1)
  }
}

/** Remove every header whose name starts with `prefix` (lower-case), e.g. 'proxy-'. */
export function removeHeaderPrefix (msg: { headers: Header[] }, prefix: string): void {
  for (let j = msg.headers.length - 1; j >= 0; j--) {
    if (msg.headers[j]![0].toLowerCase().startsWith(prefix)) msg.headers.splice(j, 1)
  }
}

/** Reason phrases for the statuses tunnelgate and its origin originate (RFC 2326 §7.1.1). */
export const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  414: 'Request-URI Too Large',
  453: 'Not Enough Bandwidth',
  454: 'Session Not Found',
  455: 'Method Not Valid in This State',
  457: 'Invalid Range',
  459: 'Aggregate Operation Not Allowed',
  460: 'Only Aggregate Operation Allowed',
  461: 'Unsupported Transport',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Time-out',
  505: 'RTSP Version Not Supported',
  551: 'Option not supported'
}

/**
 * Serialize a message. Content-Length is recomputed from the body (added when the body is
 * non-empty, removed when it is empty), so a rewritten SDP always carries a true length.
 */
export function serializeMessage (msg: RtspMessage): Buffer {
  const start = msg.kind === 'request'
    ? `${msg.method} ${msg.uri} ${msg.version}`
    : `${msg.version} ${msg.status} ${msg.reason}`
  let head = start + '\r\n'
  let sawLength = false
  for (const [k, v] of msg.headers) {
    if (k.toLowerCase() === 'content-length') {
      if (sawLength || msg.body.length === 0) continue
      sawLength = true
      head += `${k}: ${msg.body.length}\r\n`
      continue
    }
    head += `${k}: ${v}\r\n`
  }
  if (!sawLength && msg.body.length > 0) head += `Content-Length: ${msg.body.length}\r\n`
  head += '\r\n'
  const headBuf = Buffer.from(head, 'latin1')
  return msg.body.length === 0 ? headBuf : Buffer.concat([headBuf, msg.body])
}

/** Build a response that echoes the request's CSeq (and Session, when given). */
export function makeResponse (
  status: number, cseq: string | undefined, extra: Header[] = [], body?: Buffer
): RtspResponse {
  const headers: Header[] = []
  if (cseq !== undefined) headers.push(['CSeq', cseq])
  headers.push(...extra)
  return {
    kind: 'response',
    version: 'RTSP/1.0',
    status,
    reason: REASONS[status] ?? 'Unknown',
    headers,
    body: body ?? Buffer.alloc(0)
  }
}
