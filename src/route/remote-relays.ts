/**
 * Remote relay nodes for a portal: the set of relays (static `--relay H:P` or `dns:NAME:PORT`
 * re-resolved periodically), their health (HTTP /healthz probes with undici), and forwarding of
 * a tunnel leg to the relay that owns its cookie by weighted rendezvous hashing, behind a signed
 * preamble that tells the relay node what this portal vouches for (forward-signer.ts). Every portal
 * computes the same owner from the same relay set, so a GET at portal A and its POST at portal B
 * meet at one relay with no shared state.
 */
import { parseRelaySpec } from '../config/relay-spec.js'
import net from 'node:net'
import { promises as dns } from 'node:dns'
import type { Logger } from 'pino'
import { Gauge, Counter } from 'prom-client'
import { Pool } from 'undici'
import { basicUser, parseSummaries, type RelaySummary } from './relay-view.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { HttpHead } from '../tunnel/codec/http-head.js'
import type { LegSink } from './legs.js'
import { PAIR_HEADER } from '../tunnel/pairing.js'
import { webSocketKey } from '../tunnel/codec/websocket-frame.js'
import { ReadGate } from '../session/read-gate.js'
import { contained, reportFault, socketOwner } from '../core/containment.js'
import { plainAddress } from '../tunnel/codec/access.js'
import type { ForwardSigner, LegClaims } from '../core/forward-signer.js'
import { PerIpCounts, RoutedLegs, type LegLimitSettings } from './leg-counts.js'
import { legOrder } from './leg-order.js'

export interface RelayTarget { host: string, port: number }

export interface RemoteRelayOptions {
  /** Signs every forwarded leg and the /status/summary reads (cluster.secret). */
  signer: ForwardSigner
  /** auth.basic is on: a GET the front door let in without a token carries a verified Basic user. */
  basicUsers?: boolean
  /** Static relays ("host:port") and/or DNS names ("dns:NAME:PORT"). */
  relays: string[]
  probeIntervalMs: number
  dnsIntervalMs: number
  connectTimeoutMs: number
  /** POST hand-shake: relays asked "is this cookie's GET yours?" before holding the POST (cluster.postAskRelays). */
  postAskRelays?: number
  /**
   * limits.maxTunnels, maxTunnelsPerIp, maxUnpairedLegs, maxUnpairedLegsPerIp counted over this
   * portal's own legs (absent: no limit at the portal, the relay nodes' own checks only).
   */
  limits?: LegLimitSettings
  /** tunnel.pairingTimeoutMs: the longest a leg this portal forwarded counts as unpaired. */
  pairingTimeoutMs?: number
  /**
   * backend.readBufferBytes: a forwarded GET, WebSocket or plain RTSP leg reads its relay node
   * into one buffer of its own (0: a fresh buffer per read, as `pipe()` does). See RelayReads.
   */
  readBufferBytes?: number
}

interface RelayState {
  id: string
  host: string
  port: number
  up: boolean
  pool: Pool
  /** Operator drain: no new tunnels; the POSTs of tunnels it holds still go to it. */
  draining: boolean
  /** Forwarded connections open now, and bytes of those closed (status page, relay_bytes_total). */
  open: Set<net.Socket>
  bytesClosed: number
  /** The relay itself says it is draining (its /healthz: SIGTERM on a relay node). */
  selfDraining: boolean
}

/**
 * A forwarded head without the client's own X-Tunnelgate-* lines: what a relay node believes comes
 * in the portal's signed preamble only, and the pair hand-shake header is the portal's to add.
 */
export function withoutOwnHeaders (raw: Buffer, headLength: number): Buffer {
  const head = raw.toString('latin1', 0, headLength)
  if (!/\nx-tunnelgate-/i.test(head)) return raw
  const kept = head.split('\n').filter((line, i) => i === 0 || !/^x-tunnelgate-/i.test(line)).join('\n')
  return Buffer.concat([Buffer.from(kept, 'latin1'), raw.subarray(headLength)])
}

/** Insert a header line right after the request line of a raw HTTP head. */
export function withHeader (raw: Buffer, headLength: number, name: string, value: string): Buffer {
  const nl = raw.indexOf(0x0a)
  if (nl === -1 || nl >= headLength) return raw
  return Buffer.concat([raw.subarray(0, nl + 1), Buffer.from(`${name}: ${value}\r\n`, 'latin1'), raw.subarray(nl + 1)])
}

/**
 * Join a client leg and its relay connection both ways; either side's end or error ends the other.
 * Relay → client goes through `reads` when the connection reads into a buffer of its own, else pipe().
 */
function splice (socket: net.Socket, up: net.Socket, reads: RelayReads | null): void {
  socket.pipe(up)
  if (reads === null) up.pipe(socket)
  else reads.attach(socket, up)
  socket.on('error', () => up.destroy())
  up.on('error', () => socket.destroy())
  socket.on('close', () => up.destroy())
  up.on('close', () => socket.destroy())
  socket.resume()
}

/**
 * The relay → client half of a forwarded leg, read into one buffer of its own (socket `onread`)
 * instead of a fresh one per read: the same as ProxySession's backend read buffer, for the same
 * reason (per-read ArrayBuffers at media rates make V8 collect garbage every few hundred ms).
 * Bytes go to the client straight from the buffer, with ReadGate's flow control (as ProxySession).
 */
class RelayReads {
  readonly buffer: Buffer
  /** Sees every read before it is forwarded (the GET pairing watch). */
  watch: ((chunk: Buffer) => void) | null = null
  #client: net.Socket | null = null
  #gate: ReadGate | null = null
  /** Reads that came before the splice (copied). */
  #early: Buffer[] = []

  constructor (size: number) { this.buffer = Buffer.allocUnsafeSlow(size) }

  read (n: number): void {
    const chunk = this.buffer.subarray(0, n)
    this.watch?.(chunk)
    const client = this.#client
    const gate = this.#gate
    if (client === null || gate === null) { this.#early.push(Buffer.from(chunk)); return }
    if (client.destroyed) return
    let ok: boolean
    if (gate.inPlace(client.writableLength)) {
      ok = client.write(chunk, gate.written)
      gate.afterWrite(client.writableLength)
    } else { ok = client.write(Buffer.from(chunk)) }
    if (!ok && client.writableLength > 0) gate.full()
  }

  /** From now on carry relay (`up`) → client (`socket`), as up.pipe(socket) would (splice()). */
  attach (socket: net.Socket, up: net.Socket): void {
    const gate = new ReadGate(up)
    this.#client = socket
    this.#gate = gate
    for (const b of this.#early) socket.write(b)
    this.#early = []
    socket.on('drain', () => gate.drained())
    up.once('end', () => socket.end())
  }
}

export class RemoteRelays implements LegSink {
  readonly #opts: RemoteRelayOptions
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #relays = new Map<string, RelayState>()
  readonly #timers: NodeJS.Timeout[] = []
  readonly #up: Gauge<'relay'>
  readonly #forwarded: Counter<'relay'>
  #rr = 0
  readonly #drainingGauge: Gauge<'relay'>
  readonly #postAsks: Counter<'result'>
  /** Relay each open tunnel's GET went to from this portal (its POSTs follow it during a drain). */
  readonly #cookieRelay = new Map<string, string>()
  #limits: LegLimitSettings | null
  /** Spliced GET, WebSocket and plain RTSP legs open now, per client address (until the client's socket closes). */
  readonly #sessions = new PerIpCounts()
  /** The leg limits over this portal's own legs, and its unpaired legs (see acceptGet / acceptPost). */
  readonly #legs: RoutedLegs
  /** Open GET legs through this portal, by cookie. */
  readonly #openGets = new Map<string, number>()

  constructor (opts: RemoteRelayOptions, metrics: GatewayMetrics, logger: Logger) {
    this.#opts = opts
    this.#limits = opts.limits ?? null
    this.#metrics = metrics
    this.#log = logger
    // Several portals each count their own share; the relay nodes keep their own checks.
    this.#legs = new RoutedLegs({
      limits: () => this.#limits,
      pairingMs: () => this.#opts.pairingTimeoutMs ?? 30_000,
      sessions: ip => ({ tunnels: this.#sessions.total, tunnelsFromIp: this.#sessions.get(ip) })
    }, metrics, logger)
    const registers = [metrics.registry]
    this.#up = new Gauge({
      name: 'tunnelgate_relay_up',
      help: 'Relay node health as this portal sees it (1 up, 0 down)',
      labelNames: ['relay'],
      registers
    })
    this.#forwarded = new Counter({
      name: 'tunnelgate_relay_legs_total',
      help: 'Tunnel legs forwarded to each relay node',
      labelNames: ['relay'],
      registers
    })
    this.#drainingGauge = new Gauge({
      name: 'tunnelgate_relay_draining',
      help: 'Relay node draining as its /healthz says (1: no new tunnels go to it)',
      labelNames: ['relay'],
      registers
    })
    this.#postAsks = new Counter({
      name: 'tunnelgate_relay_post_asks_total',
      help: 'POST pair hand-shakes with relay nodes, by result (known, unknown, error)',
      labelNames: ['result'],
      registers
    })
    // tunnelgate_unpaired_legs at a portal is this portal's own count, read whenever it is scraped
    // (the in-process relay, which would set it, gets no legs in the portal role).
    Object.assign(metrics.unpairedLegs, { collect: () => { metrics.unpairedLegs.set(this.#legs.unpaired) } })
  }

  relays (): Array<{ id: string, up: boolean, draining: boolean, bytes: number }> {
    return [...this.#relays.values()].map(r => {
      let bytes = r.bytesClosed
      for (const s of r.open) bytes += s.bytesRead + s.bytesWritten
      return { id: r.id, up: r.up, draining: r.draining, bytes }
    })
  }

  /**
   * What each relay node that is up says of its relays (its `/status/summary`: tunnels, bytes,
   * busiest paths), each relabelled `<relay node>/<its relay>`; a node that does not answer within
   * `timeoutMs` (or with something else) is left out. For this portal's status page.
   */
  async summaries (timeoutMs = 1000): Promise<RelaySummary[]> {
    const per = await Promise.all([...this.#relays.values()].filter(r => r.up).map(async r => {
      try {
        const res = await r.pool.request({
          path: '/status/summary',
          method: 'GET',
          headers: this.#opts.signer.readHeaders('/status/summary'),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        })
        const text = await res.body.text()
        if (res.statusCode !== 200 || text.length > 1 << 20) return []
        return parseSummaries(JSON.parse(text)).map(s => ({ ...s, relay: `${r.id}/${s.relay}` }))
      } catch { return [] }
    }))
    return per.flat()
  }

  /** Operator drain of a relay node (this portal only); false when there is no such relay. */
  setDraining (id: string, draining: boolean): boolean {
    const r = this.#relays.get(id)
    if (r === undefined) return false
    r.draining = draining
    return true
  }

  /**
   * Try order for a leg: a POST first to the relay this portal sent its GET to; otherwise the HRW
   * order with draining relays last (so new tunnels avoid them while any other relay is up).
   */
  #order (key: string, track?: { cookie: string, kind: 'get' | 'post' }): RelayState[] {
    const up = [...this.#relays.values()].filter(r => r.up)
      .map(relay => ({ id: relay.id, draining: relay.draining || relay.selfDraining, relay }))
    return legOrder(key, up, track?.kind === 'post' ? this.#cookieRelay.get(track.cookie) : undefined).map(n => n.relay)
  }

  async start (): Promise<void> {
    await this.#resolve()
    await this.#probeAll()
    this.#timers.push(setInterval(() => { void this.#resolve() }, this.#opts.dnsIntervalMs))
    this.#timers.push(setInterval(() => { void this.#probeAll() }, this.#opts.probeIntervalMs))
    for (const t of this.#timers) t.unref()
  }

  async #resolve (): Promise<void> {
    const want = new Map<string, { host: string, port: number }>()
    for (const spec of this.#opts.relays) {
      const s = parseRelaySpec(spec)
      if (s.kind === 'static') { want.set(`${s.host}:${s.port}`, s); continue }
      const addrs: string[] = []
      try { addrs.push(...await dns.resolve4(s.name)) } catch {}
      try { addrs.push(...await dns.resolve6(s.name)) } catch {}
      if (addrs.length === 0) {
        try { for (const a of await dns.lookup(s.name, { all: true })) addrs.push(a.address) } catch {}
      }
      for (const a of addrs) want.set(`${a}:${s.port}`, { host: a, port: s.port })
    }
    for (const [id, r] of this.#relays) {
      if (!want.has(id)) {
        void r.pool.close()
        this.#relays.delete(id)
        this.#up.remove({ relay: id })
        this.#drainingGauge.remove({ relay: id })
      }
    }
    for (const [id, t] of want) {
      if (this.#relays.has(id)) continue
      const origin = `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`
      this.#relays.set(id, {
        id,
        host: t.host,
        port: t.port,
        up: true,
        pool: new Pool(origin, { connections: 1, keepAliveTimeout: 10_000 }),
        draining: false,
        open: new Set(),
        bytesClosed: 0,
        selfDraining: false
      })
    }
  }

  async #probeAll (): Promise<void> {
    await Promise.all([...this.#relays.values()].map(async r => {
      let ok = false
      let draining = r.selfDraining
      try {
        const res = await r.pool.request({ path: '/healthz', method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 })
        const body = (await res.body.text()).slice(0, 4096)
        ok = res.statusCode === 200
        // A draining relay answers 200 {"status":"draining","draining":true}: up, but no new tunnels.
        if (ok) {
          try { draining = (JSON.parse(body) as { draining?: unknown }).draining === true } catch { draining = false }
        }
      } catch {}
      if (draining !== r.selfDraining) {
        this.#log.info(
          { relay: r.id, draining },
          draining ? 'relay is draining: no new tunnels go to it' : 'relay no longer draining'
        )
      }
      r.selfDraining = draining
      this.#drainingGauge.set({ relay: r.id }, draining ? 1 : 0)
      if (ok !== r.up) this.#log.warn({ relay: r.id, up: ok }, 'relay health changed')
      r.up = ok
      this.#up.set({ relay: r.id }, ok ? 1 : 0)
    }))
  }

  #forward (
    socket: net.Socket, raw: Buffer, claims: LegClaims, key: string, fallback: boolean,
    track?: { cookie: string, kind: 'get' | 'post' }
  ): void {
    socket.pause()
    // A throw while forwarding this leg closes this leg only.
    const owner = socketOwner(socket, socket.remoteAddress ?? '', (where, err) => {
      reportFault(this.#metrics, this.#log, where, err)
    })
    const order = this.#order(key, track)
    const attempt = (i: number): void => {
      const relay = order[i]
      if (relay === undefined || (i > 0 && !fallback)) {
        this.#metrics.errorsTotal.inc({ code: 'TG_ERR_RELAY_UNAVAILABLE' })
        socket.destroy()
        return
      }
      // POSTs carry next to nothing back: only the legs that carry media get a read buffer.
      const size = this.#opts.readBufferBytes ?? 0
      const reads = size > 0 && track?.kind !== 'post' ? new RelayReads(size) : null
      const up = reads === null
        ? net.connect({ host: relay.host, port: relay.port, noDelay: true })
        : net.connect({
          host: relay.host,
          port: relay.port,
          noDelay: true,
          onread: {
            buffer: reads.buffer,
            callback: contained(owner, 'portal-forward-data', (n: number) => {
              reads.read(n)
              return true
            }, false)
          }
        })
      const timer = setTimeout(() => up.destroy(new Error('connect timeout')), this.#opts.connectTimeoutMs)
      up.once('error', err => {
        clearTimeout(timer)
        if (up.bytesWritten > 0) { socket.destroy(); return }
        this.#log.warn({ relay: relay.id, err: err.message }, 'relay unreachable')
        relay.up = false
        this.#up.set({ relay: relay.id }, 0)
        attempt(i + 1)
      })
      up.once('connect', contained(owner, 'portal-forward-connect', () => {
        clearTimeout(timer)
        this.#forwarded.inc({ relay: relay.id })
        relay.open.add(up)
        if (track?.kind === 'get') {
          this.#cookieRelay.set(track.cookie, relay.id)
          this.#watchPairing(up, track.cookie, reads)
        }
        up.once('close', () => {
          relay.open.delete(up)
          relay.bytesClosed += up.bytesRead + up.bytesWritten
          if (track?.kind === 'get' && this.#cookieRelay.get(track.cookie) === relay.id) {
            this.#cookieRelay.delete(track.cookie)
          }
        })
        up.setKeepAlive(true, 30_000)
        // A proof per connection: a relay node refuses a nonce it has seen.
        up.write(Buffer.concat([this.#opts.signer.preamble(claims), raw]))
        splice(socket, up, reads)
      }))
    }
    attempt(0)
  }

  acceptGet (
    socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer,
    info: { clientAddress: string, raw?: Buffer, allowedPath?: string }
  ): void {
    this.#metrics.legsTotal.inc({ leg: 'get', transport: 'http-tunnel' })
    const ip = plainAddress(info.clientAddress)
    // A second GET for a cookie whose GET is open here is a duplicate (its relay drops it).
    this.#legs.acceptGet(socket, cookie, ip, this.#openGets.has(cookie), () => {
      this.#countSession(socket, ip)
      this.#openGets.set(cookie, (this.#openGets.get(cookie) ?? 0) + 1)
      socket.once('close', () => {
        const n = (this.#openGets.get(cookie) ?? 1) - 1
        if (n > 0) { this.#openGets.set(cookie, n); return }
        this.#openGets.delete(cookie)
        this.#legs.getPaired(cookie)
      })
      const raw = withoutOwnHeaders(info.raw ?? rest, head.headLength)
      const claims: LegClaims = { ...this.#vouch(head, info), kind: 'get', cookie }
      this.#forward(socket, raw, claims, cookie, true, { cookie, kind: 'get' })
      return true
    })
  }

  /** What this portal vouches for with a leg: the client address, the token's path, the Basic user. */
  #vouch (head: HttpHead, info: { clientAddress: string, allowedPath?: string }): Omit<LegClaims, 'kind'> {
    // A token (allowedPath) was checked instead of Basic credentials: an Authorization header is then unverified.
    const user = info.allowedPath === undefined && this.#opts.basicUsers === true ? basicUser(head.headers) : undefined
    return {
      client: info.clientAddress,
      ...(info.allowedPath === undefined ? {} : { path: info.allowedPath }),
      ...(user === undefined ? {} : { user })
    }
  }

  acceptPost (
    socket: net.Socket, head: HttpHead, cookie: string, rest: Buffer, info: { clientAddress: string, raw?: Buffer }
  ): void {
    this.#metrics.legsTotal.inc({ leg: 'post', transport: 'http-tunnel' })
    const raw = withoutOwnHeaders(info.raw ?? rest, head.headLength)
    const client = info.clientAddress
    const getOpen = this.#openGets.has(cookie)
    // Without its GET open here, unpaired as far as this portal knows, until a relay says it holds the GET
    // (its GET came through another portal), a GET with its cookie comes here, the POST closes, or the
    // pairing window ends.
    this.#legs.acceptPost(socket, cookie, plainAddress(client), getOpen, paired => {
      // Its GET is open through this portal: when this portal's connection to the GET's relay is up,
      // the POST goes straight there, with no hand-shake round trip in front of the client's first
      // request; else the relays are asked. A POST follows its cookie's owner only: sent elsewhere it
      // could never pair.
      const held = getOpen ? this.#relays.get(this.#cookieRelay.get(cookie) ?? '') : undefined
      if (held !== undefined && held.up) {
        this.#forward(socket, raw, { kind: 'post', client, cookie }, cookie, false, { cookie, kind: 'post' })
        return true
      }
      socket.once('close', paired)
      this.#forwardPost(socket, raw, client, cookie, paired)
      return true
    })
  }

  /** Reloaded limits (new legs only). */
  setLimits (limits: LegLimitSettings): void { this.#limits = limits }

  /** Spliced GET, WebSocket and plain RTSP legs open through this portal. */
  get tunnels (): number { return this.#sessions.total }

  /** Unpaired legs as this portal counts them. */
  get unpairedLegs (): number { return this.#legs.unpaired }

  /**
   * A GET's POST may reach its relay through another portal: the relay then answers RTSP on the GET,
   * so a byte after the GET's reply head means the tunnel is paired and the GET no longer counts.
   */
  #watchPairing (up: net.Socket, cookie: string, reads: RelayReads | null): void {
    let head = ''
    const stop = (): void => { if (reads === null) up.off('data', onData); else reads.watch = null }
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) { if (head.length > 4096) stop(); return }
      if (head.length > end + 4) { stop(); this.#legs.getPaired(cookie) } else head = '\r\n\r\n'
    }
    if (reads === null) up.on('data', onData)
    else reads.watch = onData
  }

  /** A spliced session leg counts from its acceptance until the client's socket closes. */
  #countSession (socket: net.Socket, ip: string): void {
    this.#sessions.add(ip, 1)
    socket.once('close', () => this.#sessions.add(ip, -1))
  }

  /**
   * A POST goes to the relay that holds its cookie's GET, wherever the relay set has moved it:
   * the first `postAskRelays` relays in try order (the one this portal sent the GET to, then HRW order,
   * draining ones last) are asked in turn with `X-Tunnelgate-Pair: known-only`; a relay that has the GET
   * answers 202 (swallowed here) and takes the POST, one that has not answers 421 at once. When none has
   * it (a POST-first client, or a leg whose GET is lost), the POST goes to the HRW owner, which holds it
   * for tunnel.orphanPostMs. The client's bytes wait in its socket meanwhile (paused).
   */
  #forwardPost (socket: net.Socket, raw: Buffer, client: string, cookie: string, onPaired?: () => void): void {
    socket.pause()
    const ask = this.#order(cookie, { cookie, kind: 'post' }).slice(0, this.#opts.postAskRelays ?? 3)
    const asked = withHeader(raw, raw.length, PAIR_HEADER, 'known-only')
    const attempt = (i: number): void => {
      if (socket.destroyed) return
      const relay = ask[i]
      if (relay === undefined) {
        this.#forward(socket, raw, { kind: 'post', client, cookie }, cookie, true, { cookie, kind: 'post' })
        return
      }
      const up = net.connect({ host: relay.host, port: relay.port, noDelay: true })
      let settled = false
      let buf: Buffer = Buffer.alloc(0)
      const timer = setTimeout(() => up.destroy(new Error('no pair answer in time')), this.#opts.connectTimeoutMs)
      const next = (result: string): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        up.destroy()
        this.#postAsks.inc({ result })
        attempt(i + 1)
      }
      up.once('error', err => {
        if (!up.connecting || settled) { next('error'); return }
        this.#log.warn({ relay: relay.id, err: err.message }, 'relay unreachable')
        relay.up = false
        this.#up.set({ relay: relay.id }, 0)
        next('error')
      })
      up.once('close', () => next('error'))
      up.once('connect', () => {
        up.write(Buffer.concat([this.#opts.signer.preamble({ kind: 'post-ask', client, cookie }), asked]))
      })
      up.on('data', contained(socketOwner(socket, socket.remoteAddress ?? '', (where, err) => {
        reportFault(this.#metrics, this.#log, where, err)
      }), 'portal-forward-data', (chunk: Buffer) => {
        if (settled) return
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) { if (buf.length > 1024) next('error'); return }
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1', 0, end))?.[1]
        if (status !== '202') { next('unknown'); return }
        settled = true
        clearTimeout(timer)
        this.#postAsks.inc({ result: 'known' })
        onPaired?.()
        up.removeAllListeners('data')
        up.removeAllListeners('close')
        up.removeAllListeners('error')
        const after = buf.subarray(end + 4)
        if (after.length > 0) socket.write(after)
        this.#forwarded.inc({ relay: relay.id })
        relay.open.add(up)
        up.once('close', () => { relay.open.delete(up); relay.bytesClosed += up.bytesRead + up.bytesWritten })
        up.setKeepAlive(true, 30_000)
        splice(socket, up, null)
      }))
    }
    attempt(0)
  }

  /**
   * A WebSocket upgrade is forwarded raw (with the client header) to the relay owning its key; that relay's front door
   * admits it again.
   */
  acceptWebSocket (
    socket: net.Socket, head: HttpHead, rest: Buffer,
    info: { clientAddress: string, raw?: Buffer, allowedPath?: string }
  ): void {
    this.#metrics.legsTotal.inc({ leg: 'websocket', transport: 'websocket' })
    const ip = plainAddress(info.clientAddress)
    if (!this.#legs.acceptSession('websocket', socket, ip)) return
    this.#countSession(socket, ip)
    this.#forward(
      socket, withoutOwnHeaders(info.raw ?? rest, head.headLength), { ...this.#vouch(head, info), kind: 'websocket' },
      webSocketKey(head), true
    )
  }

  acceptRtsp (socket: net.Socket, initial: Buffer, info: { clientAddress: string }): void {
    this.#metrics.legsTotal.inc({ leg: 'rtsp', transport: 'rtsp' })
    const ip = plainAddress(info.clientAddress)
    if (!this.#legs.acceptSession('rtsp', socket, ip)) return
    this.#countSession(socket, ip)
    // Plain RTSP has no head to carry anything: the signed preamble gives the relay node its client address.
    this.#forward(socket, initial, { kind: 'rtsp', client: info.clientAddress }, `rtsp:${this.#rr++}`, true)
  }

  async close (): Promise<void> {
    for (const t of this.#timers) clearInterval(t)
    this.#legs.clear()
    await Promise.all([...this.#relays.values()].map(r => r.pool.close()))
  }
}
