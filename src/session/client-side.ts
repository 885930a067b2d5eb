/**
 * What a proxy session needs from its client connection(s): the seam between the client sides
 * (src/tunnel/: HttpTunnel, WebSocketClient, RtspClient; the live fan-out's viewers write through
 * it too) and the session, which never knows which one it serves.
 */
/** What a session needs from its client connection(s). */
export interface ClientSide {
  /**
   * Write towards the client; false when past the high-water mark (wait for onDrain). An RTSP
   * message is always written whole in a call of its own (ProxySession and the live fan-out's
   * LiveViewer both do): the WebSocket side adjusts SDP responses there (codec/sdp/browser.ts).
   */
  write (buf: Buffer, done?: () => void): boolean
  /**
   * Optional: write `a` then `b` as if they were one buffer (`$` frames only, never a message),
   * e.g. corked into one writev; false as `write` would be for their concatenation. Without it,
   * the session concatenates them and calls `write` once.
   *
   * `done` (of either): called once the bytes have left the process, or were discarded (closed
   * client). The session passes it when the bytes sit in its backend read buffer
   * (`backend.readBufferBytes`), and reads nothing more into that buffer until it is called.
   */
  writeBoth? (a: Buffer, b: Buffer, done?: () => void): boolean
  /** Bytes queued towards the client and not yet sent. */
  readonly queued: number
  onDrain (cb: () => void): void
  /** Stop / restart reading client input (backpressure from the backend). */
  pauseInput (): void
  resumeInput (): void
  /** Close every client connection of this session. */
  close (): void
  /**
   * Who to tell when a write would pass the connection's output budget (socket-output.ts): the
   * write was dropped, and the session closes the client.
   */
  onOverflow? (handler: (reason: string) => void): void
  /**
   * Server-originated RTSP requests (OPTIONS/GET_PARAMETER keepalives, ANNOUNCE, ...): 'forward'
   * them to the client (default), or 'answer' them on the client's behalf (a WebSocket player
   * whose parser throws on requests).
   */
  readonly serverRequests?: 'forward' | 'answer'
}
