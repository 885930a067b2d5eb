/**
 * Moving an accepted socket to another process (pure message shapes + the one unsafe step).
 * The bytes the front door already read travel with the message, and the socket stops reading
 * in the same tick, so that no byte is read (and dropped) by the sending process afterwards.
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
  /** The gateway-authenticated user (on a relay node: as its portal's proof says). */
  user?: string
}

/**
 * Collect what the socket has buffered but not emitted, then stop it reading. The order
 * matters: `socket.read()` on a drained buffer asks the handle to read again (net.Socket's
 * `_read` calls `readStart`), so stopping first and draining after would restart reading, and
 * bytes read between the send and the close of the parent's handle would be dropped (the
 * handle's `onread` is a no-op once it is sent). Both steps run in one tick, so libuv reads
 * nothing in between.
 */
export function freezeSocket (socket: net.Socket): Buffer {
  const chunks: Buffer[] = []
  let c: Buffer | null
  while ((c = socket.read() as Buffer | null) !== null) chunks.push(c)
  const handle = (socket as unknown as { _handle?: { readStop?: () => number, reading?: boolean } })._handle
  if (handle?.readStop !== undefined) { handle.readStop(); handle.reading = false }
  return Buffer.concat(chunks)
}

export function isLegMessage (m: unknown): m is LegMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'leg'
}
