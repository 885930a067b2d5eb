/**
 * One gateway under test with every oracle attached: the layout's processes (crash = a process
 * exits), the /healthz poller, the reference viewer, and the resource baseline taken after the
 * warm-up. The campaign, the shrinker and the regression replay all drive a Harness.
 */
import { HealthPoller } from './health.js'
import { LagMeter } from './lag.js'
import type { LayoutName } from './layouts.js'
import type { OracleName } from './fixtures.js'
import { sampleWindow, settledOrLeak, type Baseline } from './resources.js'
import { sendCase } from './send.js'
import { GatewayStack } from './stack.js'
import { Viewer } from './viewer.js'
import { warmupCases } from './warmup.js'

export const STALL_MS = 8000
const CRASH_FIRST_MS = 1500
/** After the warm-up: the pairing window and the destroy timers of its connections have passed. */
const WARM_SETTLE_MS = 2000

export interface OracleFailure { oracle: OracleName, message: string, signature: string, atMs: number }

export class Harness {
  readonly stack: GatewayStack
  readonly lag: LagMeter
  readonly viewer: Viewer
  readonly health: HealthPoller
  baseline: Baseline = []
  /** A health or viewer failure seen, not yet reported (see failure()). */
  #seen: OracleFailure | null = null

  private constructor (stack: GatewayStack, lag: LagMeter, viewer: Viewer) {
    this.stack = stack
    this.lag = lag
    this.viewer = viewer
    this.health = new HealthPoller(stack.port, lag)
  }

  /**
   * Start `layout`, the viewer, the health poller; warm up and take the baseline unless `baseline`
   * is false (a restart after a failure: the resource oracle is then not checked on it).
   */
  static async start (layout: LayoutName, opts: { baseline?: boolean } = {}): Promise<Harness> {
    const stack = await GatewayStack.start(layout)
    const lag = new LagMeter()
    let viewer: Viewer
    try {
      viewer = await Viewer.start(stack.port, lag, STALL_MS)
    } catch (err) {
      lag.stop()
      await stack.stop()
      throw err
    }
    const h = new Harness(stack, lag, viewer)
    if (opts.baseline === false) return h
    await Promise.all(warmupCases().map(async c => await sendCase(stack.port, c)))
    await new Promise(resolve => setTimeout(resolve, WARM_SETTLE_MS))
    h.baseline = await sampleWindow(stack.processes())
    return h
  }

  /**
   * The first live oracle that fails (crash, health, viewer), or null. A health or viewer failure
   * is held back for CRASH_FIRST_MS: a crashing gateway drops the viewer's connection before the
   * fuzzer has seen the process exit, and then the crash is the finding.
   */
  failure (): OracleFailure | null {
    const crash = this.stack.crash
    if (crash !== null) {
      return {
        oracle: 'crash',
        message: `${crash.role} (pid ${crash.pid}) died: ${crash.how}\n${crash.stderr.slice(-3000)}`,
        signature: crash.signature,
        atMs: crash.atMs
      }
    }
    const health = this.health.failure()
    const viewer = this.viewer.failure()
    const other: OracleFailure | null =
      health !== null
        ? { oracle: 'healthz', message: health, signature: 'healthz unanswered', atMs: Date.now() }
        : viewer !== null
          ? { oracle: 'viewer', message: viewer, signature: 'reference viewer stalled', atMs: Date.now() }
          : null
    if (other === null) { this.#seen = null; return null }
    this.#seen ??= other
    return Date.now() - this.#seen.atMs >= CRASH_FIRST_MS ? this.#seen : null
  }

  get hasBaseline (): boolean { return this.baseline.length > 0 }

  /** Oracle (d): after the traffic, back at the baseline within `settleMs`. */
  async resourcesBack (settleMs: number): Promise<{ failure: OracleFailure | null, now: Baseline }> {
    const r = await settledOrLeak(this.baseline, () => this.stack.processes(), this.stack.ports, settleMs)
    return {
      failure:
        r.message === null
          ? null
          : {
              oracle: 'resources',
              message: r.message,
              signature: 'descriptors or memory above the baseline',
              atMs: Date.now()
            },
      now: r.now
    }
  }

  async stop (): Promise<void> {
    this.health.stop()
    this.lag.stop()
    await this.viewer.stop()
    await this.stack.stop()
  }
}
