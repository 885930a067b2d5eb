/**
 * Local relay workers: one process per core by default. The portal hands each tunnel leg (the
 * accepted socket itself, with the bytes already read) to the worker that owns its cookie by
 * rendezvous hashing, so both legs of a tunnel meet in one worker and media bytes never pass
 * through the portal process. A worker that dies is restarted with backoff; its tunnels are lost
 * (their clients reconnect), other workers are untouched.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type net from 'node:net'
import type { Logger } from 'pino'
import { AggregatorRegistry } from 'prom-client'
import type { Config } from '../config.js'
import type { GatewayMetrics } from '../metrics.js'
import { ownerOf } from '../balancer/hrw.js'
import { workerFigures } from '../backends/balancing.js'
import type { LoadFigure } from '../backends/pool.js'
import type { LegSink } from '../portal/front-door.js'
import type { HttpHead } from '../tunnel/codec/http-head.js'
import { freezeSocket, type LegKind, type LegMessage } from './handoff.js'
import { webSocketKey } from '../portal/websocket-door.js'

interface WorkerSlot {
  id: number
  child: ChildProcess | null
  ready: boolean
  restarts: number
}

export interface WorkerStatus { tunnels: number, unpairedLegs: number, backends: Array<{ name: string, sessions: number, healthy: boolean, bps?: number }> }

const workerFile = (): string => {
  const here = fileURLToPath(import.meta.url)
  return here.endsWith('.ts') ? here.replace(/workers\.ts$/, 'worker.ts') : here.replace(/workers\.js$/, 'worker.js')
}

export class WorkerPool implements LegSink {
  readonly #config: Config
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #slots: WorkerSlot[] = []
  #queryId = 0
  readonly #waiting = new Map<number, (data: unknown) => void>()
  #closing = false
  #rr = 0

  constructor (config: Config, metrics: GatewayMetrics, logger: Logger) {
    this.#config = config
    this.#metrics = metrics
    this.#log = logger
  }

  get size (): number { return this.#slots.length }

  async start (count: number): Promise<void> {
    const ready: Array<Promise<void>> = []
    for (let i = 0; i < count; i++) {
      const slot: WorkerSlot = { id: i, child: null, ready: false, restarts: 0 }
      this.#slots.push(slot)
      ready.push(this.#spawn(slot))
    }
    await Promise.all(ready)
  }

  #spawn (slot: WorkerSlot): Promise<void> {
    return new Promise(resolve => {
      const child = fork(workerFile(), [], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      slot.child = child
      slot.ready = false
      child.on('message', (m: { type: string, id?: number, data?: unknown }) => {
        if (m.type === 'ready') { slot.ready = true; resolve(); return }
        if (m.type === 'reply' && m.id !== undefined) {
          const cb = this.#waiting.get(m.id)
          if (cb !== undefined) { this.#waiting.delete(m.id); cb(m.data) }
        }
      })
      child.on('exit', (code, signal) => {
        slot.ready = false
        slot.child = null
        resolve()
        if (this.#closing) return
        slot.restarts++
        this.#metrics.errorsTotal.inc({ code: 'TG_ERR_WORKER_EXIT' })
        const delay = Math.min(5000, 100 * 2 ** Math.min(slot.restarts, 6))
        this.#log.error({ worker: slot.id, code, signal, restartInMs: delay }, 'relay worker exited; restarting')
        setTimeout(() => { if (!this.#closing) void this.#spawn(slot) }, delay).unref()
      })
      child.send({ type: 'config', config: this.#config, workerId: slot.id })
    })
  }

  /** The live worker that owns a key (rendezvous hash over live workers). */
  #owner (key: string): WorkerSlot | null {
    const live = this.#slots.filter(s => s.ready && s.child !== null)
    if (live.length === 0) return null
    const id = ownerOf(key, live.map(s => ({ id: String(s.id), weight: 1 })))
    return live.find(s => String(s.id) === id) ?? null
  }

  #handOff (kind: LegKind, socket: net.Socket, head: HttpHead | null, cookie: string, rest: Buffer, clientAddress: string, key: string, allowedPath?: string): void {
    const slot = this.#owner(key)
    if (slot === null || slot.child === null) {
      this.#metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_TOO_MANY' })
      socket.destroy()
      return
    }
    const extra = freezeSocket(socket)
    const all = extra.length > 0 ? Buffer.concat([rest, extra]) : rest
    const msg: LegMessage = { type: 'leg', kind, cookie, head, rest: all.toString('base64'), clientAddress, ...(allowedPath === undefined ? {} : { allowedPath }) }
    slot.child.send(msg, socket, { keepOpen: false }, err => {
      if (err !== null && err !== undefined) { this.#log.warn({ err: err.message }, 'leg hand-off failed'); socket.destroy() }
    })
  }

  acceptGet (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: { clientAddress: string, allowedPath?: string }): void {
    this.#handOff('get', socket, head, cookie, rest, info.clientAddress, cookie, info.allowedPath)
  }

  acceptPost (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: { clientAddress: string }): void {
    this.#handOff('post', socket, head, cookie, rest, info.clientAddress, cookie)
  }

  acceptRtsp (socket: net.Socket, initial: Buffer, info: { clientAddress: string }): void {
    this.#handOff('rtsp', socket, null, '', initial, info.clientAddress, `rtsp:${this.#rr++}`)
  }

  /** A WebSocket goes to the worker owning its random handshake key (the worker writes the 101). */
  acceptWebSocket (socket: net.Socket, head: HttpHead, rest: Buffer, info: { clientAddress: string, allowedPath?: string }): void {
    this.#handOff('websocket', socket, head, '', rest, info.clientAddress, webSocketKey(head), info.allowedPath)
  }

  #query<T> (slot: WorkerSlot, what: 'metrics' | 'status'): Promise<T | null> {
    const child = slot.child
    if (child === null || !slot.ready) return Promise.resolve(null)
    const id = ++this.#queryId
    return new Promise(resolve => {
      const t = setTimeout(() => { this.#waiting.delete(id); resolve(null) }, 2000)
      this.#waiting.set(id, data => { clearTimeout(t); resolve(data as T) })
      child.send({ type: 'query', id, what })
    })
  }

  /** Portal + workers metrics, summed per series, as one exposition text. */
  async metricsText (own: GatewayMetrics): Promise<string> {
    const parts = await Promise.all(this.#slots.map(s => this.#query<unknown[]>(s, 'metrics')))
    const all = [await own.registry.getMetricsAsJSON(), ...parts.filter((p): p is unknown[] => p !== null)]
    return AggregatorRegistry.aggregate(all as never).metrics()
  }

  /** Balancer: send every worker the other workers' load and the outside figures (backends/balancing.ts). */
  async pushLoad (outside: LoadFigure[]): Promise<void> {
    const statuses = await Promise.all(this.#slots.map(s => this.#query<WorkerStatus>(s, 'status')))
    const per = workerFigures(statuses, outside, Date.now())
    this.#slots.forEach((s, i) => { if (s.ready && s.child !== null && s.child.connected) s.child.send({ type: 'load', figures: per[i] }) })
  }

  async status (): Promise<WorkerStatus[]> {
    const parts = await Promise.all(this.#slots.map(s => this.#query<WorkerStatus>(s, 'status')))
    return parts.filter((p): p is WorkerStatus => p !== null)
  }

  async close (graceMs = 0): Promise<void> {
    this.#closing = true
    await Promise.all(this.#slots.map(s => new Promise<void>(resolve => {
      const child = s.child
      if (child === null) { resolve(); return }
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve() }, graceMs + 3000)
      child.once('exit', () => { clearTimeout(t); resolve() })
      child.send({ type: 'shutdown', graceMs })
    })))
  }
}
