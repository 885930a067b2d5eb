/**
 * Local relay workers: one process per core by default. The portal hands each tunnel leg (the
 * accepted socket itself, with the bytes already read) to the worker that owns its cookie by
 * rendezvous hashing, so both legs of a tunnel meet in one worker and media bytes never pass
 * through the portal process. POST legs (client requests only) stay here and their bytes are
 * relayed to the worker as messages (relayed-post.ts): Node passes one socket per IPC round trip,
 * so a hand-off per leg would make every tunnel wait for two. A worker that dies is restarted
 * with backoff; its tunnels are lost (their clients reconnect), other workers are untouched.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type net from 'node:net'
import type { Logger } from 'pino'
import { AggregatorRegistry } from 'prom-client'
import type { Config } from '../config/config.js'
import type { GatewayMetrics } from '../core/metrics.js'
import { workerFigures } from '../backends/balancing.js'
import type { LoadFigure } from '../backends/pool.js'
import type { LegSink } from './legs.js'
import type { HttpHead } from '../tunnel/codec/http-head.js'
import { freezeSocket, type LegKind, type LegMessage } from './handoff.js'
import { isPostControl, PostRelays } from './relayed-post.js'
import type { AccessRecord } from './relay-view.js'
import { webSocketKey } from '../tunnel/codec/websocket-frame.js'
import { plainAddress } from '../tunnel/codec/access.js'
import { PerIpCounts, RoutedLegs } from './leg-counts.js'
import { legOrder } from './leg-order.js'
import { reportFault } from '../core/containment.js'

interface WorkerSlot {
  id: number
  child: ChildProcess | null
  ready: boolean
  restarts: number
  /** Operator drain: no new tunnels (GETs); POSTs of its open tunnels still reach it. */
  draining: boolean
  /**
   * limits.maxTunnelsPerIp and limits.maxTunnels across workers: this worker's open sessions per
   * client address as last reported (status reply), plus legs handed to it since, minus sessions
   * it reported ended.
   */
  ipCounts: PerIpCounts
  /** Legs handed off since the oldest status query still counted (seq, client address). */
  handoffs: Array<{ seq: number, ip: string }>
  seq: number
  /** Hand-off seq at which the applied status reply was asked. */
  appliedSeq: number
  /** POST legs relayed to this worker (their sockets stay in the portal). */
  posts: PostRelays
}

export interface WorkerStatus {
  tunnels: number
  unpairedLegs: number
  tunnelsByIp?: Record<string, number>
  backends: Array<{ name: string, sessions: number, healthy: boolean, bps?: number }>
}

/**
 * Send a control message to a worker. False when its IPC channel is already closed; a write that
 * fails later (EPIPE while the worker exits) is dropped here, the worker's 'exit' handler covers it.
 */
function sendControl (child: ChildProcess, msg: unknown): boolean {
  if (!child.connected) return false
  child.send(msg as object, err => { if (err !== null && err !== undefined) child.emit('error', err) })
  return true
}

const workerFile = (): string => {
  const here = fileURLToPath(import.meta.url)
  return here.endsWith('.ts') ? here.replace(/workers\.ts$/, 'worker.ts') : here.replace(/workers\.js$/, 'worker.js')
}

export class WorkerPool implements LegSink {
  #config: Config
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #slots: WorkerSlot[] = []
  #queryId = 0
  readonly #waiting = new Map<number, (data: unknown) => void>()
  #closing = false
  #rr = 0
  /** Access records from workers (accessLog.file: the portal alone writes the file). */
  onAccess: ((r: AccessRecord) => void) | null = null
  /** Worker holding each open tunnel's GET, so its POSTs follow it even when HRW would not. */
  readonly #cookieOwner = new Map<string, number>()
  #drainedBackends: string[] = []
  /**
   * limits.maxTunnels, maxTunnelsPerIp, maxUnpairedLegsPerIp and maxUnpairedLegs for the whole
   * gateway, not per worker (the workers keep their own checks as a second line). Unpaired: GETs
   * handed off with no POST of their cookie handed off since (until the worker reports the tunnel's
   * end, or tunnel.pairingTimeoutMs, after which the worker has closed an unpaired GET), and POSTs
   * handed off while no GET of their cookie was open (until that GET comes, or the window ends).
   */
  readonly #legs: RoutedLegs

  constructor (config: Config, metrics: GatewayMetrics, logger: Logger) {
    this.#config = config
    this.#metrics = metrics
    this.#log = logger
    this.#legs = new RoutedLegs({
      limits: () => this.#config.limits,
      pairingMs: () => this.#config.tunnel.pairingTimeoutMs,
      sessions: ip => ({ tunnels: this.tunnels, tunnelsFromIp: this.tunnelsFrom(ip) })
    }, metrics, logger)
  }

  get size (): number { return this.#slots.length }

  async start (count: number): Promise<void> {
    const ready: Array<Promise<void>> = []
    for (let i = 0; i < count; i++) {
      const slot: WorkerSlot = {
        id: i,
        child: null,
        ready: false,
        restarts: 0,
        draining: false,
        ipCounts: new PerIpCounts(),
        handoffs: [],
        seq: 0,
        appliedSeq: 0,
        posts: new PostRelays((where, err) => reportFault(this.#metrics, this.#log, where, err))
      }
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
      // An IPC write to a worker that is exiting fails with EPIPE; without a listener that error
      // would be thrown in the portal process. The 'exit' handler below restarts the worker.
      child.on('error', err => {
        if (!this.#closing) { this.#log.warn({ worker: slot.id, err: err.message }, 'relay worker IPC error') }
      })
      child.on('message', (m: { type: string, id?: number, data?: unknown }) => {
        if (m.type === 'ready') { slot.ready = true; resolve(); return }
        if (m.type === 'tunnel-end') {
          const c = (m as { cookie?: string }).cookie
          if (c !== undefined && this.#cookieOwner.get(c) === slot.id) this.#tunnelEnded(c)
          return
        }
        if (m.type === 'session-end') {
          const ip = (m as { ip?: string }).ip; if (ip !== undefined) { slot.ipCounts.add(ip, -1) } return
        }
        if (m.type === 'access') { this.onAccess?.((m as unknown as { record: AccessRecord }).record); return }
        if (isPostControl(m)) { slot.posts.control(m); return }
        if (m.type === 'reply' && m.id !== undefined) {
          const cb = this.#waiting.get(m.id)
          if (cb !== undefined) { this.#waiting.delete(m.id); cb(m.data) }
        }
      })
      child.on('exit', (code, signal) => {
        slot.ready = false
        slot.child = null
        slot.ipCounts.clear()
        slot.handoffs = []
        slot.posts.closeAll()
        // Its tunnels are gone: their cookies no longer have an open GET, unpaired or not.
        for (const [c, id] of this.#cookieOwner) if (id === slot.id) this.#tunnelEnded(c)
        resolve()
        if (this.#closing) return
        slot.restarts++
        this.#metrics.errorsTotal.inc({ code: 'TG_ERR_WORKER_EXIT' })
        const delay = Math.min(5000, 100 * 2 ** Math.min(slot.restarts, 6))
        this.#log.error({ worker: slot.id, code, signal, restartInMs: delay }, 'relay worker exited; restarting')
        setTimeout(() => { if (!this.#closing) void this.#spawn(slot) }, delay).unref()
      })
      sendControl(child, {
        type: 'config',
        config: this.#config,
        workerId: slot.id,
        generation: slot.restarts,
        drainedBackends: this.#drainedBackends
      })
    })
  }

  #handOff (
    kind: LegKind, socket: net.Socket, head: HttpHead | null, cookie: string, rest: Buffer, clientAddress: string,
    key: string, vouched: { allowedPath?: string, user?: string } = {}
  ): boolean {
    const slot = this.#pick(kind, cookie, key)
    if (slot === null || slot.child === null) {
      this.#metrics.errorsTotal.inc({ code: 'TG_ERR_TUN_TOO_MANY' })
      socket.destroy()
      return false
    }
    if (kind !== 'post') {
      // A GET, WebSocket or plain RTSP leg opens a session there (a POST joins its GET's).
      const ip = plainAddress(clientAddress)
      slot.ipCounts.add(ip, 1)
      slot.handoffs.push({ seq: ++slot.seq, ip })
      if (slot.handoffs.length > 100_000) slot.handoffs.shift()
    }
    if (kind === 'post' && head !== null) {
      // Kept here, its bytes relayed as messages (relayed-post.ts): no IPC round trip of its own.
      const child = slot.child
      slot.posts.open(m => sendControl(child, m), socket, head, cookie, rest, clientAddress)
      return true
    }
    const extra = freezeSocket(socket)
    const all = extra.length > 0 ? Buffer.concat([rest, extra]) : rest
    const msg: LegMessage = {
      type: 'leg',
      kind,
      cookie,
      head,
      rest: all.toString('base64'),
      clientAddress,
      ...(vouched.allowedPath === undefined ? {} : { allowedPath: vouched.allowedPath }),
      ...(vouched.user === undefined ? {} : { user: vouched.user })
    }
    slot.child.send(msg, socket, { keepOpen: false }, err => {
      if (err !== null && err !== undefined) {
        this.#log.warn({ err: err.message }, 'leg hand-off failed')
        socket.destroy()
      }
    })
    return true
  }

  acceptGet (
    socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer,
    info: { clientAddress: string, allowedPath?: string, user?: string }
  ): void {
    // A GET for a cookie whose tunnel is open is a duplicate (its worker drops it).
    this.#legs.acceptGet(socket, cookie, plainAddress(info.clientAddress), this.#cookieOwner.has(cookie),
      () => this.#handOff('get', socket, head, cookie, rest, info.clientAddress, cookie, info))
  }

  acceptPost (socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: { clientAddress: string }): void {
    const held = this.#cookieOwner.get(cookie)
    const holder = held === undefined ? undefined : this.#slots[held]
    // With its GET open on a worker this POST pairs it (or joins it as a re-POST).
    const getOpen = holder !== undefined && holder.child !== null
    this.#legs.acceptPost(socket, cookie, plainAddress(info.clientAddress), getOpen,
      () => this.#handOff('post', socket, head, cookie, rest, info.clientAddress, cookie))
  }

  acceptRtsp (socket: net.Socket, initial: Buffer, info: { clientAddress: string }): void {
    if (!this.#legs.acceptSession('rtsp', socket, plainAddress(info.clientAddress))) return
    this.#handOff('rtsp', socket, null, '', initial, info.clientAddress, `rtsp:${this.#rr++}`)
  }

  /** A WebSocket goes to the worker owning its random handshake key (the worker writes the 101). */
  acceptWebSocket (
    socket: net.Socket, head: HttpHead, rest: Buffer,
    info: { clientAddress: string, allowedPath?: string, user?: string }
  ): void {
    if (!this.#legs.acceptSession('websocket', socket, plainAddress(info.clientAddress))) return
    this.#handOff('websocket', socket, head, '', rest, info.clientAddress, webSocketKey(head), info)
  }

  /** Open sessions from `ip` over all workers (see WorkerSlot.ipCounts). */
  tunnelsFrom (ip: string): number {
    let n = 0
    for (const s of this.#slots) n += s.ipCounts.get(ip)
    return n
  }

  /** Open sessions over all workers, as the portal counts them. */
  get tunnels (): number {
    let n = 0
    for (const s of this.#slots) n += s.ipCounts.total
    return n
  }

  /** The tunnel of cookie `c` ended on its worker: its POSTs no longer follow it, and it is no longer unpaired. */
  #tunnelEnded (c: string): void {
    this.#cookieOwner.delete(c)
    this.#legs.getPaired(c)
  }

  /** Unpaired legs over all workers, as the portal counts them. */
  get unpairedLegs (): number { return this.#legs.unpaired }

  /**
   * Where a leg goes: a POST (or a duplicate GET, which its tunnel's worker drops) to the worker
   * holding its cookie's GET; anything else to the HRW owner among live workers that are not
   * draining (all live workers when every one drains).
   */
  #pick (kind: LegKind, cookie: string, key: string): WorkerSlot | null {
    const live = this.#slots.filter(s => s.ready && s.child !== null)
      .map(slot => ({ id: String(slot.id), draining: slot.draining, slot }))
    const held = kind === 'post' || kind === 'get' ? this.#cookieOwner.get(cookie) : undefined
    const slot = legOrder(key, live, held === undefined ? undefined : String(held))[0]?.slot ?? null
    if (slot !== null && kind === 'get') this.#cookieOwner.set(cookie, slot.id)
    return slot
  }

  slotsInfo (): Array<{ id: number, up: boolean, draining: boolean }> {
    return this.#slots.map(s => ({ id: s.id, up: s.ready && s.child !== null, draining: s.draining }))
  }

  /** Operator drain of one worker; false when there is no such worker. */
  setDraining (id: number, draining: boolean): boolean {
    const s = this.#slots[id]
    if (s === undefined) return false
    s.draining = draining
    return true
  }

  /** Backends drained by the operator, given to workers that (re)start. */
  setDrainedBackends (names: string[]): void { this.#drainedBackends = names }

  /** Ask every worker (or one) an operator question: summary, tunnels, kick, drain-backend, reconfigure. */
  async ask<T> (what: string, arg?: unknown, only?: number): Promise<Array<{ slot: number, data: T | null }>> {
    const slots = only === undefined ? this.#slots : this.#slots.filter(s => s.id === only)
    return await Promise.all(
      slots.map(async s => ({ slot: s.id, data: await this.#query<T>(s, what as 'status', arg) }))
    )
  }

  /** A reloaded config: kept for restarts and sent to every worker (open tunnels keep theirs). */
  async reconfigure (config: Config): Promise<void> {
    this.#config = config
    await this.ask('reconfigure', config)
  }

  #query<T> (slot: WorkerSlot, what: 'metrics' | 'status', arg?: unknown): Promise<T | null> {
    const child = slot.child
    if (child === null || !slot.ready) return Promise.resolve(null)
    const id = ++this.#queryId
    const from = slot.seq
    return new Promise(resolve => {
      const t = setTimeout(() => { this.#waiting.delete(id); resolve(null) }, 2000)
      this.#waiting.set(id, data => {
        clearTimeout(t)
        if (what === 'status') this.#correctIpCounts(slot, from, data as WorkerStatus | null)
        resolve(data as T)
      })
      sendControl(child, { type: 'query', id, what, arg })
    })
  }

  /**
   * A worker's status reply corrects the portal's per-address counts: what the worker reports
   * (IPC keeps order, so it has seen every leg handed off before the query), plus legs handed off
   * since the query was sent. Legs the worker refused without a session stop counting here.
   */
  #correctIpCounts (slot: WorkerSlot, from: number, status: WorkerStatus | null): void {
    const by = status?.tunnelsByIp
    if (by === undefined || by === null || from < slot.appliedSeq) return
    slot.appliedSeq = from
    const counts = new PerIpCounts()
    for (const [ip, n] of Object.entries(by)) if (typeof n === 'number' && n > 0) counts.add(ip, n)
    slot.handoffs = slot.handoffs.filter(h => h.seq > from)
    for (const h of slot.handoffs) counts.add(h.ip, 1)
    slot.ipCounts = counts
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
    this.#slots.forEach((s, i) => {
      if (s.ready && s.child !== null && s.child.connected) { sendControl(s.child, { type: 'load', figures: per[i] }) }
    })
  }

  async status (): Promise<WorkerStatus[]> {
    const parts = await Promise.all(this.#slots.map(s => this.#query<WorkerStatus>(s, 'status')))
    return parts.filter((p): p is WorkerStatus => p !== null)
  }

  async close (graceMs = 0): Promise<void> {
    this.#closing = true
    this.#legs.clear()
    await Promise.all(this.#slots.map(s => new Promise<void>(resolve => {
      const child = s.child
      if (child === null) { resolve(); return }
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve() }, graceMs + 3000)
      child.once('exit', () => { clearTimeout(t); resolve() })
      if (!sendControl(child, { type: 'shutdown', graceMs })) { clearTimeout(t); child.kill('SIGKILL'); resolve() }
    })))
  }
}
