/**
 * The status page's data: every `status.sampleIntervalMs` the portal samples relays, backends,
 * streams and error counters, turns byte totals into Mbit/s, keeps the last `status.historySamples`
 * samples in a ring buffer (the sparklines) and pushes each sample to the page's SSE clients.
 */
import type { BackendInfo, Operator, RelayInfo } from './control.js'

export interface StreamRow { path: string, tunnels: number, mbps: number }

export interface StatusSample {
  /** Epoch ms. */
  t: number
  tunnels: number
  unpairedLegs: number
  mbps: number
  relays: Array<RelayInfo & { mbps: number }>
  backends: Array<BackendInfo & { mbps: number }>
  streams: StreamRow[]
  /** Error counts since start, by code. */
  errors: Record<string, number>
  /** Errors during the last interval (all codes). */
  errorsDelta: number
}

export interface HistoryPoint {
  t: number
  tunnels: number
  mbps: number
  errors: number
  relays: Record<string, number>
  backends: Record<string, number>
}

/** Fixed-size ring buffer. */
export class Ring<T> {
  readonly #buf: Array<T | undefined>
  #next = 0
  #size = 0
  constructor (readonly capacity: number) { this.#buf = new Array<T | undefined>(Math.max(1, capacity)) }
  push (v: T): void {
    this.#buf[this.#next] = v
    this.#next = (this.#next + 1) % this.#buf.length
    this.#size = Math.min(this.#size + 1, this.#buf.length)
  }

  get size (): number { return this.#size }
  /** Oldest first. */
  toArray (): T[] {
    const out: T[] = []
    const start = (this.#next - this.#size + this.#buf.length) % this.#buf.length
    for (let i = 0; i < this.#size; i++) out.push(this.#buf[(start + i) % this.#buf.length] as T)
    return out
  }
}

const mbps = (bytes: number, ms: number): number => ms <= 0 ? 0 : Math.round(bytes * 8 / ms / 1000 * 1000) / 1000

export interface StatusFeedOptions { sampleIntervalMs: number, historySamples: number, streams: number }

export class StatusFeed {
  readonly #op: Operator
  readonly #opts: StatusFeedOptions
  readonly history: Ring<HistoryPoint>
  #last: StatusSample | null = null
  #prevBytes = new Map<string, number>()
  #prevT = 0
  #prevErrors = -1
  #timer: NodeJS.Timeout | null = null
  #sampling: Promise<StatusSample> | null = null
  readonly #listeners = new Set<(s: StatusSample) => void>()

  constructor (op: Operator, opts: StatusFeedOptions) {
    this.#op = op
    this.#opts = opts
    this.history = new Ring(opts.historySamples)
  }

  start (): void {
    if (this.#timer !== null) return
    void this.sample()
    this.#timer = setInterval(() => { void this.sample().catch(() => {}) }, this.#opts.sampleIntervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#listeners.clear()
  }

  get last (): StatusSample | null { return this.#last }
  get listenerCount (): number { return this.#listeners.size }
  subscribe (cb: (s: StatusSample) => void): () => void {
    this.#listeners.add(cb)
    return () => { this.#listeners.delete(cb) }
  }

  /** Take one sample now (concurrent callers share it). */
  sample (): Promise<StatusSample> {
    this.#sampling ??= this.#take().finally(() => { this.#sampling = null })
    return this.#sampling
  }

  async #take (): Promise<StatusSample> {
    // One summary per relay serves the relay, backend and stream rows; error counts come from the
    // counters. Nothing here renders the metrics registry (its default metrics list /proc/self/fd).
    const summaries = await this.#op.summaries()
    const [relays, backends, errors] = await Promise.all(
      [this.#op.relays(summaries), this.#op.backends(summaries), this.#op.errorCounts()]
    )
    const t = Date.now()
    const dt = this.#prevT === 0 ? 0 : t - this.#prevT
    const nextBytes = new Map<string, number>()
    const rate = (key: string, bytes: number): number => {
      nextBytes.set(key, bytes)
      const prev = this.#prevBytes.get(key)
      return prev === undefined || bytes < prev ? 0 : mbps(bytes - prev, dt)
    }
    const r2 = relays.map(r => ({ ...r, mbps: rate(`r:${r.id}`, r.bytes) }))
    const b2 = backends.map(b => ({ ...b, mbps: rate(`b:${b.name}`, b.bytes) }))
    const paths = new Map<string, { tunnels: number, bytes: number }>()
    for (const s of summaries) {
      for (const p of s.paths) {
        const e = paths.get(p.path) ?? { tunnels: 0, bytes: 0 }
        e.tunnels += p.tunnels
        e.bytes += p.bytes
        paths.set(p.path, e)
      }
    }
    const streams = [...paths.entries()].map(
      ([path, e]) => ({ path, tunnels: e.tunnels, mbps: rate(`p:${path}`, e.bytes) })
    )
      .sort((a, b) => b.tunnels - a.tunnels || b.mbps - a.mbps).slice(0, this.#opts.streams)
    this.#prevBytes = nextBytes
    this.#prevT = t
    const errTotal = Object.values(errors).reduce((a, b) => a + b, 0)
    const errorsDelta = this.#prevErrors < 0 ? 0 : Math.max(0, errTotal - this.#prevErrors)
    this.#prevErrors = errTotal
    const tunnels = summaries.length > 0 ? summaries.reduce((n, s) => n + s.tunnels, 0) : 0
    const sample: StatusSample = {
      t,
      tunnels,
      unpairedLegs: summaries.reduce((n, s) => n + s.unpairedLegs, 0),
      mbps: Math.round(r2.reduce((n, r) => n + r.mbps, 0) * 1000) / 1000,
      relays: r2,
      backends: b2,
      streams,
      errors,
      errorsDelta
    }
    this.#last = sample
    this.history.push({
      t,
      tunnels,
      mbps: sample.mbps,
      errors: errorsDelta,
      relays: Object.fromEntries(r2.map(r => [r.id, r.mbps])),
      backends: Object.fromEntries(b2.map(b => [b.name, b.sessions]))
    })
    for (const cb of this.#listeners) cb(sample)
    return sample
  }
}
