/**
 * RTSP over WebSocket at the front door: recognise the upgrade request from its head, check the
 * handshake and the gateway's authentication, and hand the raw socket to the leg sink (the
 * in-process relay, the local worker owning its key, or a remote relay node), exactly like a
 * tunnel leg. The relay that keeps the socket writes the 101 and runs the session.
 *
 * Authentication (when `auth.basic` or `auth.tokenSecrets` is set): a path-bound token in the
 * query (`?token=…`, the parameter named by `auth.tokenQueryParam`) or `Authorization: Bearer`,
 * or HTTP Basic credentials. A token's path bounds every RTSP request of the session.
 */
import { refuseConnection } from '../tunnel/refuse.js'
import type net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { whenDecided, type Gate, type GateVerdict } from './gate.js'
import { contained, reportFault, socketOwner } from '../core/containment.js'
import { buildHttpError, type HttpHead } from '../tunnel/codec/http-head.js'
import type { Header } from '../tunnel/codec/rtsp-message.js'
import { checkHandshake, isWebSocketUpgrade, targetPath } from '../tunnel/codec/websocket-frame.js'
import type { LegInfo, LegSink } from '../route/legs.js'

/** True when `head` is an upgrade to the RTSP-over-WebSocket path (enabled in the config). */
export function isRtspWebSocket (config: Config, head: HttpHead): boolean {
  return config.websocket.enabled && isWebSocketUpgrade(head) && targetPath(head.target) === config.websocket.path
}

export interface WebSocketAdmission {
  config: Config
  metrics: GatewayMetrics
  logger: Logger
  legs: LegSink
  /** The gateway's authentication (it counts and logs its own refusals). */
  gate: Gate
}

/**
 * Check an upgrade request and pass it on, or refuse it with a coded error, a log line and an
 * HTTP error reply. `info.raw` holds every byte read (for forwarding to a relay node unchanged).
 */
export function admitWebSocket (
  d: WebSocketAdmission, socket: net.Socket, head: HttpHead, rest: Buffer, info: LegInfo
): void {
  const answer = (status: number, reason: string, headers: Header[]): void => {
    refuseConnection(socket, buildHttpError(status, reason, headers))
  }
  const hs = checkHandshake(head)
  if (!hs.ok) {
    d.metrics.errorsTotal.inc({ code: hs.code })
    d.logger.info(
      { client: info.clientAddress, transport: 'websocket', code: hs.code, reason: hs.reason.slice(0, 300) },
      `WebSocket upgrade refused: ${hs.status}`
    )
    answer(
      hs.status, hs.status === 426 ? 'Upgrade Required' : hs.status === 405 ? 'Method Not Allowed' : 'Bad Request',
      hs.headers
    )
    return
  }
  const accept = (allowedPath: string | undefined): void => {
    d.legs.acceptWebSocket(socket, head, rest, { ...info, ...(allowedPath === undefined ? {} : { allowedPath }) })
  }
  if (!d.gate.enabled) { accept(undefined); return }
  // A token's path bounds the session's RTSP requests (the upgrade's own path is the WebSocket endpoint).
  const owner = socketOwner(socket, info.clientAddress, (where, err) => {
    reportFault(d.metrics, d.logger, where, err, { transport: 'websocket' })
  })
  whenDecided(socket, d.gate.check({
    client: info.clientAddress, headers: head.headers, target: head.target, transport: 'websocket'
  }), contained(owner, 'door-data', (v: GateVerdict) => {
    if (v.ok) accept(v.tokenPath)
    else answer(v.status, v.statusText, v.headers)
  }))
}
