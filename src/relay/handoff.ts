/**
 * Moving an accepted socket to another process (pure message shapes + the one unsafe step).
 * The bytes the front door already read travel with the message; reading is stopped first so
 * that no byte is read (and dropped) by the sending process between the decision and the send.
 */
import type net from 'node:net'
import type { HttpHead } from '../tunnel/codec/http-head.js'

export type LegKind = 'get' | 'post' | 'rtsp' | 'websocket'

export interface LegMessage {
  type: 'leg'
  kind: LegKind
  cookie: string
  head: HttpHead | null
  /** Bytes already read after the head (base64, to survive JSON serialization). */
  rest: string
  clientAddress: string
  /** Stream path a token bound the tunnel to (GET only). */
  allowedPath?: string
}

/** Stop the socket reading and collect what it has buffered but not emitted. */
export function freezeSocket (socket: net.Socket): Buffer {
  const handle = (socket as unknown as { _handle?: { readStop?: () => number, reading?: boolean } })._handle
  if (handle?.readStop !== undefined) { handle.readStop(); handle.reading = false }
  const chunks: Buffer[] = []
  let c: Buffer | null
  while ((c = socket.read() as Buffer | null) !== null) chunks.push(c)
  return Buffer.concat(chunks)
}

export function isLegMessage (m: unknown): m is LegMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'leg'
}
