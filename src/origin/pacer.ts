/**
 * Real-time pacing against a monotonic start clock: everything whose due time is ≤ now is
 * handed to the sink in one batch, then the pacer sleeps until the next due time. Due times
 * come from sample timestamps, so timer jitter never accumulates into drift.
 *
 * The sink may return a promise (backpressure): the pacer waits for it before going on.
 */
import { performance } from 'node:perf_hooks'

export interface Timed { dueMs: number }

export interface PacerSource<T extends Timed> { next (): Promise<T | undefined> }

export type PacerSink<T extends Timed> = (batch: T[], nowMs: number) => void | Promise<void>

export class Pacer<T extends Timed> {
  readonly #src: PacerSource<T>
  readonly #sink: PacerSink<T>
  readonly #onEnd: (err?: unknown) => void
  #startMs = 0
  #running = false
  #timer: NodeJS.Timeout | undefined
  #wake: (() => void) | undefined

  constructor (src: PacerSource<T>, sink: PacerSink<T>, onEnd: (err?: unknown) => void = () => {}) {
    this.#src = src
    this.#sink = sink
    this.#onEnd = onEnd
  }

  get running (): boolean { return this.#running }

  /** Milliseconds since the start clock. */
  now (): number { return performance.now() - this.#startMs }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#startMs = performance.now()
    this.#run().then(() => this.#onEnd(), (err: unknown) => this.#onEnd(err))
  }

  stop (): void {
    this.#running = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  async #run (): Promise<void> {
    let pending = await this.#src.next()
    while (this.#running && pending !== undefined) {
      const now = this.now()
      if (pending.dueMs > now) {
        await this.#sleep(pending.dueMs - now)
        continue
      }
      const batch: T[] = []
      while (pending !== undefined && pending.dueMs <= now) {
        batch.push(pending)
        pending = await this.#src.next()
      }
      if (!this.#running) return
      const r = this.#sink(batch, this.now())
      if (r !== undefined) await r
    }
    this.#running = false
  }

  #sleep (ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve
      this.#timer = setTimeout(() => {
        this.#wake = undefined
        this.#timer = undefined
        resolve()
      }, Math.max(1, Math.ceil(ms)))
    })
  }
}
