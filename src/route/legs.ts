/**
 * What a door hands a leg to once its head is read and admitted: the sink (the in-process relay, the
 * local workers, or the remote relay nodes) and what it is told about the leg.
 */
import type net from 'node:net'
import type { HttpHead } from '../tunnel/codec/http-head.js'

export interface LegInfo {
  clientAddress: string
  /** performance.now() when the connection was accepted. */
  acceptedAt: number
  /** Every byte read so far, head included (for forwarding a leg unchanged). */
  raw?: Buffer
  /** Stream path a token bound this tunnel to (requests for other paths get RTSP 403). */
  allowedPath?: string
  /** The gateway-authenticated user a portal's proof names (relay nodes). */
  user?: string
}

export interface LegSink {
  acceptGet (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: LegInfo): void
  acceptPost (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: LegInfo): void
  acceptRtsp (socket: net.Socket, initial: Buffer, info: LegInfo): void
  /** RTSP over WebSocket: an upgrade request whose handshake and auth were checked (the 101 is the sink's). */
  acceptWebSocket (socket: net.Socket, head: HttpHead, rest: Buffer, info: LegInfo): void
}
