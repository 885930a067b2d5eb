/**
 * POST legs relayed to a local relay worker as messages, instead of handing their sockets over: only
 * the GET (the media path) is handed over, so a burst of new tunnels waits for one IPC round trip per
 * tunnel, not two (docs/decisions/post-relay.md).
 *
 *   portal → worker  { type: 'post', id, cookie, head, rest, clientAddress }  a POST leg arrives
 *                    { type: 'post-data', id, data }                           bytes read from it
 *                    { type: 'post-end', id }                                  the client closed it
 *   worker → portal  { type: 'post-ctl', id, op, data? }                       what the worker does
 *                    with the leg: write (an interim 100 or an error reply), end, destroy, and
 *                    pause / resume (backpressure while the backend is slow)
 *
 * Bytes travel as latin1 strings (messages are JSON; a POST body is base64 text already, so this
 * adds nothing to its size). `PostRelays` is the portal's end (one per worker),
 * `RelayedPost` the worker's: a Duplex that the relay and HttpTunnel use as they use a POST socket.
 */
import { Duplex } from 'node:stream'
import type net from 'node:net'
import type { HttpHead } from '../tunnel/codec/http-head.js'
import { contained, socketOwner, type EntryPoint } from '../core/containment.js'

export type PostToWorker =
  | { type: 'post', id: number, cookie: string, head: HttpHead, rest: string, clientAddress: string }
  | { type: 'post-data', id: number, data: string }
  | { type: 'post-end', id: number }

export interface PostControl {
  type: 'post-ctl'
  id: number
  op: 'write' | 'end' | 'destroy' | 'pause' | 'resume'
  data?: string
}

export function isPostToWorker (m: unknown): m is PostToWorker {
  const t = (m as { type?: unknown } | null)?.type
  return t === 'post' || t === 'post-data' || t === 'post-end'
}

export function isPostControl (m: unknown): m is PostControl {
  return (m as { type?: unknown } | null)?.type === 'post-ctl'
}

/** The portal's end for one worker: the POST sockets it relays there, by id. */
export class PostRelays {
  readonly #sockets = new Map<number, net.Socket>()
  #seq = 0
  /** Counts and logs a fault contained in one relayed leg. */
  readonly #report: ((where: EntryPoint, err: unknown) => void) | undefined

  constructor (report?: (where: EntryPoint, err: unknown) => void) { this.#report = report }

  /** Legs relayed now. */
  get size (): number { return this.#sockets.size }

  /**
   * Relay `socket` (paused, its head read; `rest` = body bytes read with it) to the worker
   * behind `send` (false when its channel is closed: the leg is closed).
   */
  open (
    send: (m: PostToWorker) => boolean, socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer,
    clientAddress: string
  ): void {
    const id = ++this.#seq
    if (!send({ type: 'post', id, cookie, head, rest: rest.toString('latin1'), clientAddress })) {
      socket.destroy()
      return
    }
    this.#sockets.set(id, socket)
    const ua = head.headers.find(([k]) => k.toLowerCase() === 'user-agent')?.[1] ?? ''
    const owner = socketOwner(socket, ua, this.#report)
    socket.on('data', contained(owner, 'portal-post-data', (chunk: Buffer) => {
      if (!send({ type: 'post-data', id, data: chunk.toString('latin1') })) { socket.destroy() }
    }))
    socket.on('error', () => {})
    socket.on('close', () => { if (this.#sockets.delete(id)) send({ type: 'post-end', id }) })
    socket.resume()
  }

  /** What the worker did with a leg. */
  control (m: PostControl): void {
    const socket = this.#sockets.get(m.id)
    if (socket === undefined) return
    switch (m.op) {
      case 'write': socket.write(Buffer.from(m.data ?? '', 'latin1')); break
      case 'end': socket.end(); break
      case 'pause': socket.pause(); break
      case 'resume': socket.resume(); break
      case 'destroy':
        this.#sockets.delete(m.id)
        socket.destroy()
        break
    }
  }

  /** The worker is gone: so are its tunnels; close every leg relayed there. */
  closeAll (): void {
    const all = [...this.#sockets.values()]
    this.#sockets.clear()
    for (const s of all) s.destroy()
  }
}

/**
 * The worker's end of one relayed POST. Reads are what the portal read from the client; writes,
 * end and destroy go back to the portal's socket. When its buffer is full (the tunnel paused its
 * input) it asks the portal to pause the socket, and to resume it once read again, so the client
 * meets TCP backpressure as it would on a handed-over socket.
 */
export class RelayedPost extends Duplex {
  readonly id: number
  readonly #send: (m: PostControl) => void
  readonly #gone: () => void
  /** The portal's socket is closed (or was told to close): nothing more goes to it. */
  #portalDone = false
  #pausedThere = false

  /** `gone`: called once when the leg is destroyed (to forget its id). */
  constructor (id: number, send: (m: PostControl) => void, gone: () => void) {
    super({ allowHalfOpen: false })
    this.id = id
    this.#send = send
    this.#gone = gone
  }

  /** Bytes the portal read from the client. */
  deliver (data: Buffer): void {
    if (this.destroyed) return
    if (!this.push(data) && !this.#pausedThere && !this.#portalDone) {
      this.#pausedThere = true
      this.#send({ type: 'post-ctl', id: this.id, op: 'pause' })
    }
  }

  /** The client closed the leg: the stream ends once what it sent has been read. */
  clientClosed (): void {
    this.#portalDone = true
    this.push(null)
  }

  override _read (): void {
    if (!this.#pausedThere || this.#portalDone) return
    this.#pausedThere = false
    this.#send({ type: 'post-ctl', id: this.id, op: 'resume' })
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.#portalDone) this.#send({ type: 'post-ctl', id: this.id, op: 'write', data: chunk.toString('latin1') })
    cb()
  }

  override _final (cb: (err?: Error | null) => void): void {
    if (!this.#portalDone) this.#send({ type: 'post-ctl', id: this.id, op: 'end' })
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#portalDone) {
      this.#portalDone = true
      this.#send({ type: 'post-ctl', id: this.id, op: 'destroy' })
    }
    this.#gone()
    cb(err)
  }

  /** The portal's socket has these options set already (its listening socket's). */
  setNoDelay (): this { return this }
  setKeepAlive (): this { return this }
}
