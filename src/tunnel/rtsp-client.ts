/**
 * A plain RTSP/TCP connection as a ProxySession client side (a client that can reach port 80 but
 * speaks RTSP, beside HttpTunnel and WebSocketClient): the socket's bytes are demuxed into RTSP
 * units for the session, and everything the session writes goes through the connection's output
 * budget (SocketOutput).
 */
import type net from 'node:net'
import type { Config } from '../config/config.js'
import { RtspDemuxer } from './codec/demux.js'
import type { ClientSide } from '../session/client-side.js'
import type { ProxySession } from '../session/proxy-session.js'
import { contained } from '../core/containment.js'
import type { OutputLedger } from '../session/socket-output.js'
import { SocketClientSide } from './socket-client.js'

/** How long a closed connection may take to send what it has queued before it is destroyed. */
const CLOSE_GRACE_MS = 1000

export class RtspClient extends SocketClientSide implements ClientSide {
  readonly #demux: RtspDemuxer
  #closed = false

  constructor (socket: net.Socket, deps: { config: Config, output?: OutputLedger | null }) {
    const l = deps.config.limits
    super(socket, l.clientOutputBytes, deps.output ?? null)
    this.#demux = new RtspDemuxer({
      maxHeadBytes: l.rtspHeadBytes, maxHeaders: l.rtspHeaders, maxBodyBytes: l.rtspBodyBytes
    })
    socket.setNoDelay(true)
  }

  /** Feed `session` from now on (`initial`: the bytes the front door read). */
  start (session: ProxySession, initial: Buffer): void {
    const socket = this.socket
    const onData = contained(session, 'rtsp-data', (chunk: Buffer): void => {
      for (const u of this.#demux.push(chunk)) {
        if (session.closed) return
        session.handleClientUnit(u)
      }
    })
    socket.on('data', onData)
    socket.on('error', () => {})
    socket.on('close', contained(session, 'rtsp-close', () => session.clientGone('client-closed')))
    onData(initial)
    socket.resume()
  }

  // ClientSide
  write (buf: Buffer, done?: () => void): boolean { return this.out.write(buf, done) }
  writeBoth (a: Buffer, b: Buffer, done?: () => void): boolean { return this.out.writeBoth(a, b, done) }
  onDrain (cb: () => void): void { this.socket.on('drain', cb) }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    const socket = this.socket
    socket.end()
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref()
  }
}
