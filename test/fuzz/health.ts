/**
 * The health oracle: `GET /healthz` on the gateway port every second, on a connection of its own,
 * must answer 200 within 1 s. A miss counts only when the fuzzer's own loop was not held up during
 * the probe (see LagMeter), and the oracle fails on MISSES_IN_A_ROW misses in a row, so one slow
 * answer on a machine shared with other builds is not a finding, a gateway that stopped answering is.
 */
import net from 'node:net'
import type { LagMeter } from './lag.js'

const INTERVAL_MS = 1000
const ANSWER_MS = 1000
export const MISSES_IN_A_ROW = 3

function probe (port: number): Promise<{ ok: boolean, ms: number, why: string }> {
  const t0 = performance.now()
  return new Promise(resolve => {
    let text = ''
    let done = false
    const finish = (ok: boolean, why: string): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resolve({ ok, ms: Math.round(performance.now() - t0), why })
    }
    const s = net.connect(port, '127.0.0.1', () =>
      s.write('GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n')
    )
    const timer = setTimeout(() => finish(false, `no answer within ${ANSWER_MS} ms`), ANSWER_MS)
    s.on('data', d => {
      text += d.toString('latin1')
      if (text.includes('\r\n')) finish(/^HTTP\/1\.[01] 200 /.test(text), text.split('\r\n')[0]!)
    })
    s.on('error', err => finish(false, err.message))
    s.on('close', () => finish(false, `closed: '${text.slice(0, 80)}'`))
  })
}

export class HealthPoller {
  readonly #port: number
  readonly #lag: LagMeter
  readonly #timer: NodeJS.Timeout
  #misses: string[] = []
  #failure: string | null = null
  probes = 0
  worstMs = 0

  constructor (port: number, lag: LagMeter) {
    this.#port = port
    this.#lag = lag
    this.#timer = setInterval(() => { void this.#once() }, INTERVAL_MS)
  }

  async #once (): Promise<void> {
    const lagBefore = this.#lag.totalMs
    const r = await probe(this.#port)
    this.probes++
    if (r.ok) { this.worstMs = Math.max(this.worstMs, r.ms); this.#misses = []; return }
    if (this.#lag.totalMs - lagBefore > ANSWER_MS / 4) return // this process was held up: inconclusive
    this.#misses.push(`${r.why} (${r.ms} ms)`)
    if (this.#misses.length >= MISSES_IN_A_ROW && this.#failure === null) {
      this.#failure = `GET /healthz failed ${MISSES_IN_A_ROW} times in a row: ${this.#misses.join('; ')}`
    }
  }

  failure (): string | null { return this.#failure }
  stop (): void { clearInterval(this.#timer) }
}
