/**
 * What the client sides over one socket (WebSocketClient, RtspClient) do alike: every write goes
 * through the connection's output budget (SocketOutput), and backpressure pauses the socket itself.
 */
import type net from 'node:net'
import { SocketOutput, type OutputLedger } from '../session/socket-output.js'

export class SocketClientSide {
  protected readonly socket: net.Socket
  /** The connection's output budget: everything written towards the client. */
  protected readonly out: SocketOutput

  constructor (socket: net.Socket, limit: number, ledger: OutputLedger | null) {
    this.socket = socket
    this.out = new SocketOutput(socket, limit, ledger)
  }

  // ClientSide
  get queued (): number { return this.socket.writableLength }
  onOverflow (handler: (reason: string) => void): void { this.out.onOverflow(handler) }
  pauseInput (): void { this.socket.pause() }
  resumeInput (): void { this.socket.resume() }
}
