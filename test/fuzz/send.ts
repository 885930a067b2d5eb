/**
 * The driver: plays one case over real sockets (connections opened at their offsets, chunks
 * written with their pauses, replies awaited where a chunk asks, sessions filled in, each
 * connection ended as planned: destroyed, FIN'd, half-closed or reset; some never read), and
 * reports what came back (first line, bytes, RTSP replies) for the run's statistics.
 */
import net from 'node:net'
import { encodeFrame } from './grammar/websocket.js'
import { SESSION_MARK, type CasePlan, type Chunk, type ConnPlan } from './plan.js'

/** How long a chunk waits at most for the replies it asks for, and a whole case at most. */
const REPLY_WAIT_MS = 1000
const CASE_MAX_MS = 15_000
/** After a FIN ('end'), how long the gateway has to close its side before the client destroys. */
const END_WAIT_MS = 1000

export interface ConnResult {
  /** The first line the gateway sent ('' when nothing). */
  firstLine: string
  received: number
  /** The gateway closed it (EOF or reset) before the client did. */
  closedByGateway: boolean
  /** The client's port (0 when it never connected), to find the connection in a trace. */
  localPort: number
}

export interface CaseResult { conns: ConnResult[] }

/** What the connections of one case share: the RTSP replies seen so far and the last Session id. */
class CaseState {
  replies = 0
  session = ''
  /** Connections of the case that read and are still open (no reply can come once none is). */
  reading = 0
  #waiters: Array<{ n: number, done: () => void }> = []

  seen (chunk: Buffer): void {
    let at = chunk.indexOf('RTSP/1.0 ')
    let more = 0
    while (at !== -1) { more++; at = chunk.indexOf('RTSP/1.0 ', at + 9) }
    if (more === 0) return
    const s = /\r\nSession: *([^;\r\n]+)/i.exec(chunk.toString('latin1', 0, Math.min(chunk.length, 8192)))
    if (s !== null) this.session = s[1]!.trim()
    this.replies += more
    this.#wake()
  }

  closed (): void {
    this.reading--
    this.#wake()
  }

  #wake (): void {
    this.#waiters = this.#waiters.filter(w => {
      if (this.replies >= w.n || this.reading <= 0) {
        w.done()
        return false
      }
      return true
    })
  }

  until (n: number, ms: number): Promise<void> {
    if (this.replies >= n || this.reading <= 0) return Promise.resolve()
    return new Promise(resolve => {
      const w = { n, done: () => { clearTimeout(t); resolve() } }
      const t = setTimeout(() => { this.#waiters = this.#waiters.filter(x => x !== w); resolve() }, ms)
      this.#waiters.push(w)
    })
  }
}

export function encodeChunk (c: Chunk, session: string): Buffer {
  if (c.encode === undefined) return c.bytes
  const raw = Buffer.from(
    c.bytes
      .toString('latin1')
      .split(SESSION_MARK)
      .join(session === '' ? 'nosession' : session),
    'latin1'
  )
  switch (c.encode) {
    case 'text':
      return raw
    case 'base64':
      return Buffer.from(raw.toString('base64'), 'latin1')
    case 'chunked-base64': {
      const b = raw.toString('base64')
      return Buffer.from(`${b.length.toString(16)}\r\n${b}\r\n`, 'latin1')
    }
    case 'ws':
      return encodeFrame({ fin: true, rsv: 0, opcode: 2, masked: true, payload: raw })
  }
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function runConn (port: number, c: ConnPlan, state: CaseState): Promise<ConnResult> {
  return new Promise(resolve => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: c.from, noDelay: true })
    let head = ''
    let received = 0
    let closed = false
    let byGateway = false
    let onClosed: (() => void) | null = null
    let localPort = 0
    const guard = setTimeout(() => s.destroy(), CASE_MAX_MS)
    s.on('error', () => {})
    s.on('end', () => { byGateway = true })
    if (c.read) state.reading++
    s.on('close', hadError => {
      if (hadError && !closed) byGateway = true
      closed = true
      if (c.read) state.closed()
      clearTimeout(guard)
      onClosed?.()
      resolve({ firstLine: head.split(/\r?\n/)[0]!.slice(0, 60), received, closedByGateway: byGateway, localPort })
    })
    s.on('data', (d: Buffer) => {
      if (head.length < 200) head += d.toString('latin1', 0, Math.min(d.length, 200))
      received += d.length
      state.seen(d)
    })
    if (!c.read) s.pause()
    /** Wait `ms`, or less if the socket closes first. */
    const hold = (ms: number): Promise<void> => closed
      ? Promise.resolve()
      : new Promise(resolve => {
        const t = setTimeout(() => { onClosed = null; resolve() }, ms)
        onClosed = () => { clearTimeout(t); resolve() }
      })
    s.once('connect', () => {
      localPort = s.localPort ?? 0
      void (async () => {
        for (const chunk of c.chunks) {
          if (chunk.waitMs > 0) await hold(chunk.waitMs)
          if (chunk.replies !== undefined && c.read) await state.until(chunk.replies, REPLY_WAIT_MS)
          if (closed || s.destroyed) return
          s.write(encodeChunk(chunk, state.session))
        }
        if (c.close === 'half') s.end()
        await hold(c.holdMs)
        if (c.close === 'end') { s.end(); await hold(END_WAIT_MS) }
        if (c.close === 'reset') s.resetAndDestroy()
        else s.destroy()
      })()
    })
  })
}

export async function sendCase (port: number, plan: CasePlan): Promise<CaseResult> {
  const state = new CaseState()
  const conns = await Promise.all(plan.conns.map(async c => {
    if (c.startMs > 0) await sleep(c.startMs)
    return await runConn(port, c, state)
  }))
  return { conns }
}
