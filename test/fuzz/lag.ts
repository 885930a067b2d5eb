/**
 * How long the fuzzer's own event loop was held up (a 100 ms tick that came late counts the delay).
 * The time-based oracles subtract it: while this process is busy or descheduled it reads the
 * viewer's progress and the health answers late, which says nothing about the gateway.
 */
const TICK_MS = 100

export class LagMeter {
  totalMs = 0
  #last = performance.now()
  readonly #timer: NodeJS.Timeout

  constructor () {
    this.#timer = setInterval(() => {
      const now = performance.now()
      const late = now - this.#last - TICK_MS
      if (late > 0) this.totalMs += late
      this.#last = now
    }, TICK_MS)
    this.#timer.unref()
  }

  stop (): void { clearInterval(this.#timer) }
}
