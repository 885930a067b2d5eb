/**
 * Where one viewer's packets go: TCP-interleaved frames on its RTSP connection, or UDP
 * datagrams from the server's shared RTP/RTCP sockets. Counts bytes and packets in metrics.
 */
import type { Socket as UdpSocket } from 'node:dgram'
import type { Socket } from 'node:net'
import { encodeInterleaved, INTERLEAVED_HEADER } from '../tunnel/codec/interleaved.js'
import type { OriginMetrics } from './metrics.js'
import type { TrackTransport } from '../tunnel/codec/transport.js'

export interface UdpPair { rtp: UdpSocket, rtcp: UdpSocket, ports: [number, number] }

export class ViewerOutput {
  readonly #conn: Socket
  readonly #udp: UdpPair | undefined
  readonly #metrics: OriginMetrics
  /** Transport per track index. */
  readonly tracks = new Map<number, TrackTransport>()

  constructor (conn: Socket, udp: UdpPair | undefined, metrics: OriginMetrics) {
    this.#conn = conn
    this.#udp = udp
    this.#metrics = metrics
  }

  /** Bytes queued in user space on the TCP connection. */
  backlog (): number { return this.#conn.writableLength }

  get closed (): boolean { return this.#conn.destroyed }

  /** Resolves when the TCP connection drains (or closes). */
  drained (): Promise<void> {
    if (this.#conn.destroyed || this.#conn.writableLength === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => { this.#conn.off('drain', done); this.#conn.off('close', done); resolve() }
      this.#conn.once('drain', done)
      this.#conn.once('close', done)
    })
  }

  cork (): void { this.#conn.cork() }
  uncork (): void { this.#conn.uncork() }

  sendRtp (track: number, pkt: Buffer): void {
    if (this.#send(track, pkt, false)) this.#metrics.packetsSent.inc()
  }

  sendRtcp (track: number, pkt: Buffer): void {
    this.#send(track, pkt, true)
  }

  #send (track: number, pkt: Buffer, rtcp: boolean): boolean {
    const t = this.tracks.get(track)
    if (t === undefined || this.#conn.destroyed) return false
    if (t.kind === 'tcp') {
      this.#conn.write(encodeInterleaved(rtcp ? t.rtcpChannel : t.rtpChannel, pkt))
      this.#metrics.bytesSent.inc(pkt.length + INTERLEAVED_HEADER)
      return true
    }
    if (this.#udp === undefined) return false
    const sock = rtcp ? this.#udp.rtcp : this.#udp.rtp
    sock.send(pkt, rtcp ? t.rtcpPort : t.rtpPort, t.host, () => {})
    this.#metrics.bytesSent.inc(pkt.length)
    return true
  }
}
