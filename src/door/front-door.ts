/**
 * The port-80 front door: a raw `net.Server` that reads each connection's request head itself
 * (bounded in size and time), keeps tunnel legs raw and hands them to the relay, and gives
 * every other connection to the web server (Fastify) with the bytes it read put back.
 *
 * Node's http.Server must never parse a tunnel leg (reference §3.8): it would chunk-encode the
 * endless GET reply, end the POST at its fake Content-Length and time it out after 300 s.
 */
import { refuseConnection } from '../tunnel/refuse.js'
import net from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { createAddressFilter, targetPath } from '../tunnel/codec/access.js'
import { gateFor, whenDecided, type GateVerdict } from './gate.js'
import { buildHttpError, classifyTunnelLeg, parseHttpHead } from '../tunnel/codec/http-head.js'
import type { LegSink } from '../route/legs.js'
import { admitWebSocket, isRtspWebSocket } from './websocket-door.js'
import { contained, reportFault, type FaultOwner } from '../core/containment.js'
import type { ForwardTrust } from './forward-trust.js'
import type { ForwardClaims } from '../tunnel/codec/forward-proof.js'

export interface FrontDoorDeps {
  config: Config
  metrics: GatewayMetrics
  logger: Logger
  legs: LegSink
  /** Where non-tunnel HTTP connections go (Fastify's underlying server). */
  web: net.Server
  /**
   * Relay nodes: every leg must come with a portal's proof (forward-trust.ts), whose client address,
   * token path and user are then believed; a leg without one is refused.
   */
  forward?: ForwardTrust | null
}

/** What a portal's proof says of a leg, as the sink takes it. */
const vouched = (c: ForwardClaims): { clientAddress: string, allowedPath?: string, user?: string } =>
  ({
    clientAddress: c.client,
    ...(c.path === undefined ? {} : { allowedPath: c.path }),
    ...(c.user === undefined ? {} : { user: c.user })
  })

/** The front door's error listener once a connection's head is read (the sink adds its own). */
function ignoreError (): void {}

/** First line of an RTSP request: "METHOD rtsp://… RTSP/1.0" (or "OPTIONS * RTSP/1.0"). */
const RTSP_START = /^[A-Z_]{3,20} \S+ RTSP\/\d\.\d\r?\n/

export function createFrontDoor (deps: FrontDoorDeps): net.Server {
  const { config, metrics, logger, legs, web } = deps
  const forward = deps.forward ?? null
  const trustForwarded = forward !== null
  const gate = gateFor(config, metrics, logger)
  const gated = gate.enabled
  const filter = createAddressFilter(config.access.allow, config.access.deny)
  const filtering = config.access.allow.length > 0 || config.access.deny.length > 0
  const denied = (socket: net.Socket, address: string): void => {
    metrics.errorsTotal.inc({ code: 'TG_ERR_ACCESS_DENIED' })
    metrics.limitHitsTotal.inc({ limit: 'access' })
    logger.info({ client: address }, 'client address refused by access.allow/deny')
    socket.destroy()
  }
  // keepAliveInitialDelay: left at 0, Node asks for TCP_KEEPIDLE 0, which Linux refuses (EINVAL),
  // and the kernel's 2 h stays until a leg sets its own 30 s.
  const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 })
  server.on('connection', socket => {
    const acceptedAt = performance.now()
    const clientAddress = socket.remoteAddress ?? 'unknown'
    // A throw while reading this connection's head closes this connection only.
    const owner: FaultOwner = {
      faultTag: clientAddress,
      fault (err, where) {
        reportFault(metrics, logger, where, err, { client: clientAddress })
        socket.destroy()
      }
    }
    if (filtering && !trustForwarded && !filter.allows(clientAddress)) { denied(socket, clientAddress); return }
    let buf: Buffer = Buffer.alloc(0)
    // A relay node's portal proof: undefined until the preamble is read, null when there is none.
    let proof: ForwardClaims | null | undefined = forward === null ? null : undefined
    const timer = setTimeout(contained(owner, 'door-timeout', () => {
      metrics.errorsTotal.inc({ code: 'TG_ERR_HTTP_HEAD_TIMEOUT' })
      metrics.limitHitsTotal.inc({ limit: 'limits.headerTimeoutMs' })
      socket.destroy()
    }), config.limits.headerTimeoutMs)
    timer.unref()
    const onClose = (): void => { clearTimeout(timer) }
    const done = (): void => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
      // Once the head is read the timer is cleared for good: swap this connection's listeners for
      // ones that hold nothing, so a long-lived leg does not keep the head bytes, the timer and
      // these closures alive (memory per paused tunnel). Errors stay swallowed as before.
      socket.removeListener('error', onClose)
      socket.removeListener('close', onClose)
      socket.on('error', ignoreError)
      socket.pause()
    }
    const onData = contained(owner, 'door-data', (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      if (proof === undefined) {
        const p = forward!.takePreamble(buf, clientAddress)
        if (p.state === 'incomplete') return
        if (p.state === 'refused') { done(); socket.destroy(); return }
        proof = p.state === 'signed' ? p.claims : null
        if (p.state === 'signed') buf = p.rest
        if (buf.length === 0) return
      }
      const nl = buf.indexOf(0x0a)
      if (nl !== -1 && RTSP_START.test(buf.toString('latin1', 0, Math.min(nl + 1, 512)))) {
        done()
        if (gated) {
          // Gateway authentication covers the HTTP tunnel only; plain RTSP would bypass it.
          metrics.errorsTotal.inc({ code: 'TG_ERR_AUTH_REQUIRED' })
          refuseConnection(socket, gate.rtspRefusal(clientAddress))
          return
        }
        const by = forward === null ? null : forward.accept(socket, proof, 'rtsp', undefined, null, clientAddress)
        if (forward !== null && by === null) return
        legs.acceptRtsp(socket, buf, { clientAddress, acceptedAt, ...(by === null ? {} : vouched(by)) })
        return
      }
      const r = parseHttpHead(buf, { maxHeadBytes: config.limits.httpHeadBytes, maxHeaders: config.limits.httpHeaders })
      if (r.state === 'incomplete') return
      done()
      if (r.state === 'error') {
        metrics.errorsTotal.inc({ code: r.code })
        if (r.code === 'TG_ERR_HTTP_HEAD_TOO_LARGE') {
          metrics.limitHitsTotal.inc({
            limit: r.reason.includes('header fields') ? 'limits.httpHeaders' : 'limits.httpHeadBytes'
          })
        }
        logger.debug({ client: clientAddress, reason: r.reason }, 'bad HTTP head')
        const status = r.code === 'TG_ERR_HTTP_HEAD_TOO_LARGE' ? 431 : 400
        refuseConnection(
          socket, buildHttpError(status, status === 431 ? 'Request Header Fields Too Large' : 'Bad Request')
        )
        return
      }
      const head = r.head
      if (isRtspWebSocket(config, head)) {
        // RTSP over WebSocket: relayed like a tunnel leg (see websocket-door.ts).
        const by = forward === null ? null : forward.accept(socket, proof, 'websocket', undefined, head, clientAddress)
        if (forward !== null && by === null) return
        if (filtering && by !== null && !filter.allows(by.client)) { denied(socket, by.client); return }
        admitWebSocket({ config, metrics, logger, legs, gate }, socket, head, buf.subarray(head.headLength), {
          clientAddress, acceptedAt, raw: buf, ...(by === null ? {} : vouched(by))
        })
        return
      }
      const leg = classifyTunnelLeg(head, {
        minCookie: config.limits.minCookieLength, maxCookie: config.limits.maxCookieLength
      })
      const rest = buf.subarray(head.headLength)
      if (leg.leg === 'error') {
        metrics.errorsTotal.inc({ code: leg.code })
        logger.info({ client: clientAddress, reason: leg.reason }, 'tunnel leg refused')
        refuseConnection(socket, buildHttpError(leg.status, leg.reason))
        return
      }
      // A relay node believes only a leg its portal vouched for.
      const by = forward === null || (leg.leg !== 'get' && leg.leg !== 'post')
        ? null
        : forward.accept(socket, proof, leg.leg, leg.cookie, head, clientAddress)
      if (by === null && forward !== null && (leg.leg === 'get' || leg.leg === 'post')) return
      // The sink resumes the socket itself (or hands it to another process unread).
      const admit = (checked: string | undefined): void => {
        const from = by?.client ?? clientAddress
        if (filtering && by !== null && !filter.allows(from)) { denied(socket, from); return }
        // On a relay node, the binding of the token the portal checked (unless this relay checked one itself).
        const allowedPath = checked ?? (leg.leg === 'get' ? by?.path : undefined)
        const user = by?.user === undefined ? {} : { user: by.user }
        if (leg.leg === 'get') {
          legs.acceptGet(socket, head, leg.cookie, rest, {
            clientAddress: from, acceptedAt, raw: buf, ...(allowedPath === undefined ? {} : { allowedPath }), ...user
          })
          return
        }
        if (leg.leg === 'post') {
          legs.acceptPost(socket, head, leg.cookie, rest, { clientAddress: from, acceptedAt, raw: buf })
          return
        }
        // Ordinary HTTP: hand the connection to the web server with what was read put back.
        socket.unshift(buf)
        web.emit('connection', socket)
        socket.resume()
      }
      if (leg.leg !== 'get' || !gated) { admit(undefined); return }
      // Password checks run off the event loop; the socket stays paused with its head kept meanwhile.
      whenDecided(socket, gate.check({
        client: clientAddress,
        headers: head.headers,
        target: head.target,
        path: targetPath(head.target),
        transport: 'http-tunnel'
      }), contained(owner, 'door-data', (v: GateVerdict) => {
        if (v.ok) admit(v.tokenPath)
        else refuseConnection(socket, buildHttpError(v.status, v.statusText, v.headers))
      }))
    })
    socket.on('data', onData)
    socket.on('error', onClose)
    socket.on('close', onClose)
  })
  return server
}
