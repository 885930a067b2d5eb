/**
 * The capped worker-scaling section of docs/benchmarks.md (capped-scaling.ts) and its part in the
 * worker-scaling target. Every figure comes from the results object.
 */
import type { CappedLayout, CappedScalingResult, CappedStep } from './capped-scaling.js'
import type { Verdict } from './verdict.js'
import { cpuIdle } from './window.js'

const f = (
  v: number | null | undefined, d = 2
): string => v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d)

/** A worker at or above this share of its quota over a window counts as saturated. */
export const SATURATED = 0.9
/** At a layout's limit the machine must have had at least this many cores idle (cores, not CPU-s). */
export const SPARE_CORES = 0.25

/** The smallest tunnel count a layout did not hold, as measured (its last window at that count). */
export function limitStep (l: CappedLayout): CappedStep | undefined {
  if (l.failedTunnels === null) return undefined
  return l.steps.filter(s => s.tunnels === l.failedTunnels).at(-1)
}

/** Cores nobody used over the window (window.ts cpuIdle per second). */
function idleCores (s: CappedStep): number { return cpuIdle(s) / s.seconds }

/** A layout's searches (passes), in the order measured. */
export function passesOf (c: CappedScalingResult, id: 'b1' | 'b2'): CappedLayout[] {
  return c.layouts.filter(l => l.id === id)
}

/** What a layout held: the mean over its passes, and each pass's figure. */
export interface LayoutHeld { mbps: number, tunnels: number, passes: number[] }

function heldOf (ls: CappedLayout[]): LayoutHeld {
  const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length)
  return {
    mbps: mean(ls.map(l => l.heldMbps)),
    tunnels: Math.round(mean(ls.map(l => l.heldTunnels))),
    passes: ls.map(l => l.heldMbps)
  }
}

/** The layouts in the order the run searched them ("b1 b2 b2 b1"). */
function searchOrder (c: CappedScalingResult): string { return c.layouts.map(l => l.id).join(' ') }

/** Which search of its layout `l` was, or null when the run searched that layout once. */
function passNo (c: CappedScalingResult, l: CappedLayout): number | null {
  return passesOf(c, l.id).length > 1 ? (l.pass ?? 1) : null
}

/** "b2" for a layout searched once, "b2 pass 2" when the run searched it several times. */
function tag (c: CappedScalingResult, l: CappedLayout): string {
  const p = passNo(c, l)
  return p === null ? l.id : `${l.id} pass ${p}`
}

/** " (pass 2)" after a layout's name when the run searched it several times, else nothing. */
function passSuffix (c: CappedScalingResult, l: CappedLayout): string {
  const p = passNo(c, l)
  return p === null ? '' : ` (pass ${p})`
}

export interface CappedFinding {
  ratio: number | null
  /**
   * Why the ratio does not decide (no limit found, the workers not saturated, the machine out of cores); empty when it
   * does.
   */
  doubts: string[]
  /** Each layout's held load (null when it was not measured). */
  b1: LayoutHeld | null
  b2: LayoutHeld | null
}

/**
 * The ratio b2 held ÷ b1 held (each the mean of its passes), and whether it measures the workers:
 * every pass of each layout must have found its limit, with every worker at its quota there and
 * cores to spare on the machine.
 */
export function cappedFinding (c: CappedScalingResult): CappedFinding {
  const doubts: string[] = []
  const b1s = passesOf(c, 'b1')
  const b2s = passesOf(c, 'b2')
  if (b1s.length === 0 || b2s.length === 0) {
    return { ratio: null, doubts: [c.skipped ?? 'b1 or b2 not measured'], b1: null, b2: null }
  }
  for (const l of [...b1s, ...b2s]) {
    const id = tag(c, l)
    if (l.error !== undefined) { doubts.push(`${id} failed: ${l.error}`); continue }
    if (l.heldTunnels === 0) { doubts.push(`${id} held no step`); continue }
    const s = limitStep(l)
    if (s === undefined) {
      doubts.push(`${id} never reached its limit (held ${l.heldTunnels} tunnels, the most tried)`)
      continue
    }
    const low = s.workerCores.filter(w => w < SATURATED * c.options.workerCores)
    if (low.length > 0) {
      doubts.push(`at ${id}'s limit (${s.tunnels} tunnels) a worker used ${low.map(w => f(w)).join(', ')} of ` +
        `its ${c.options.workerCores} cores: not the workers' limit`)
    }
    const idle = idleCores(s)
    if (idle < SPARE_CORES) {
      doubts.push(`at ${id}'s limit the machine had ${f(idle)} cores idle: the machine, not the workers, may have ` +
        'run out')
    }
    if (s.disturbed) doubts.push(`${id}'s limit window was disturbed by other processes`)
  }
  const b1 = heldOf(b1s)
  const b2 = heldOf(b2s)
  const ratio = b1.mbps > 0 && b2.mbps > 0 ? b2.mbps / b1.mbps : null
  return { ratio, doubts, b1, b2 }
}

/** ", the means of 2 searches each in the order b1 b2 b2 b1 (b2 890, 918; b1 380, 418)" when there were passes. */
function passesText (c: CappedScalingResult, b1: LayoutHeld, b2: LayoutHeld): string {
  if (b1.passes.length < 2 && b2.passes.length < 2) return ''
  return ', the means ' +
    `of ${b1.passes.length === b2.passes.length ? b1.passes.length : `${b2.passes.length} and ${b1.passes.length}`} ` +
    `searches each in the order ${searchOrder(c)} (b2 ${b2.passes.map(v => f(v, 0)).join(', ')}; ` +
    `b1 ${b1.passes.map(v => f(v, 0)).join(', ')})`
}

/**
 * The worker-scaling verdict: the capped measurement decides when it is conclusive; the uncapped
 * ratio (machine-bound here) is kept beside it.
 */
export function scalingVerdict (uncapped: Verdict, c: CappedScalingResult | undefined): Verdict {
  if (c === undefined) return uncapped
  if (c.skipped !== undefined) {
    return { ...uncapped, measured: `${uncapped.measured}; capped workers not measured: ${c.skipped}` }
  }
  const { ratio, doubts, b1, b2 } = cappedFinding(c)
  const capped = ratio === null || b1 === null || b2 === null
    ? `with each relay worker capped at ${c.options.workerCores} of a core: no ratio (${doubts.join('; ')})`
    : `with each relay worker capped at ${c.options.workerCores} of a core so that the workers, not the cores shared ` +
      `with the source and the load generator, are the limit (run of ${c.date}): **${f(ratio)}×** ` +
      `(b2 ${f(b2.mbps, 0)} vs b1 ${f(b1.mbps, 0)} Mbit/s held, ${b2.tunnels} vs ${b1.tunnels} ` +
      `tunnels${passesText(c, b1, b2)}; see "Worker scaling with capped ` +
      `workers")${doubts.length > 0 ? `; inconclusive: ${doubts.join('; ')}` : ''}`
  const decided = ratio !== null && doubts.length === 0
  return {
    target: uncapped.target,
    measured: `${capped}; uncapped (verdict only when the capped run is missing or inconclusive): ${uncapped.measured}`,
    met: decided ? ratio >= 1.7 : uncapped.met
  }
}

/** Tunnels per worker ("118 + 118"), '–' when not read (or results from before it was). */
function split (s: CappedStep): string { return (s.workerTunnels ?? []).length > 0 ? s.workerTunnels.join(' + ') : '–' }

function rows (c: CappedScalingResult, l: CappedLayout): string[] {
  const out = [
    '| tunnels × kbit/s | offered Mbit/s | delivered Mbit/s | lost / late | held | tunnels per worker | worker cores ' +
      '(each, of ' +
      c.options.workerCores +
      ') | held back by the quota ms (each) | portal cores | source cores | load generator cores | idle cores | ' +
      'delay p50 / p99 ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  ]
  for (const s of l.steps) {
    const per = (v: number): string => f(v / s.seconds)
    const idle = idleCores(s)
    out.push(`| ${s.tunnels} × ${s.kbps}${s.disturbed ? ' (disturbed)' : ''} | ${f(s.offeredMbps, 0)} ` +
      `| ${f(s.deliveredMbps, 0)} | ${s.lost} / ${s.late}${s.errors > 0 ? ` (${s.errors} failed)` : ''} ` +
      `| ${s.held ? 'yes' : 'no'} | ${split(s)} | ${s.workerCores.map(w => f(w)).join(' + ')} ` +
      `| ${s.throttledMs.map(x => f(x, 0)).join(' + ')} | ${per(s.cpuProcs[0] ?? 0)} | ${per(s.cpuSource)} ` +
      `| ${per(s.cpuClient)} | ${f(idle)} | ${f(s.delayMs.p50)} / ${f(s.delayMs.p99)} |`)
  }
  return out
}

export function renderCappedScaling (c: CappedScalingResult): string[] {
  const o = c.options
  const L = ['## Worker scaling with capped workers', '']
  L.push(
    `> From the run of ${c.date} (profile **${c.profile}**, ${f(c.durationSeconds / 60, 1)} min; ${c.machine.nproc} ` +
      `× ${c.machine.cpu ?? 'unknown CPU'}, Linux ${c.machine.kernel ?? '–'}, load average at its ` +
      `start ${c.machine.loadavg}).${c.profile !== 'full' ? ` **A ${c.profile} run: indicative only.**` : ''}`,
    ''
  )
  if (c.skipped !== undefined) { L.push(`Not measured: ${c.skipped}.`, ''); return L }
  L.push(
    'The uncapped sweep above cannot show worker scaling on this machine: the source and the load generator need ' +
      'about as many cores per delivered Gbit as the box, so one worker\'s layout runs out of machine before its ' +
      `worker is busy. Here b1 and b2 run again with **each relay worker in a cgroup of its own (${c.cgroup}) capped ` +
      `at ${o.workerCores} of a core** (CFS quota, 10 ms period; \`bench/src/cpu-cap.ts\`), the portal uncapped (it ` +
      'hands each leg\'s socket to a worker and is then out of the data path). A capped worker saturates at a load ' +
      'the machine carries with cores to spare, so each layout\'s held load is what its workers carry. The held load ' +
      `is searched, not swept on a grid: ${o.startTunnels} tunnels × ${o.kbps} kbit/s, growing ×${o.growth} until a ` +
      `step is not held (a lost packet or one later than ${o.lateMs} ms, a failed tunnel, or < 97 % delivered; every ` +
      'such step measured twice), then bisected until the last step held and the first not held are ' +
      `within ${f(o.precision * 100, 0)} % (at most ${o.maxSteps} ` +
      'windows).' + ((o.passes ?? 1) > 1
      ? ` Each layout is searched ${o.passes} times, each time on a box started afresh, in the mirrored ` +
          `order ${searchOrder(c)}, and its held load is the mean of its searches: the shared machine's speed drifts ` +
          'over minutes, and a single b1-then-b2 order would put a drift into the ratio.'
      : '') + ` ${o.warmSeconds} s warm-up (twice that after coming down), ${o.stepSeconds} s windows. Cores are ` +
        'CPU-s per second of the window.',
    ''
  )
  const { ratio, doubts, b1, b2 } = cappedFinding(c)
  L.push(
    '| layout | held (tunnels / Mbit/s) | first not held (tunnels) | tunnels per worker there | workers\' cores ' +
      'there | idle cores there |',
    '|---|---|---|---|---|---|'
  )
  for (const l of c.layouts) {
    const s = limitStep(l)
    L.push(`| ${l.id}: ${l.name}${passSuffix(c, l)}${l.error !== undefined ? ` (failed: ${l.error})` : ''} ` +
      `| ${l.heldTunnels} / ${f(l.heldMbps, 0)} | ${l.failedTunnels ?? 'not reached'} ` +
      `| ${s === undefined ? '–' : split(s)} | ${s === undefined ? '–' : s.workerCores.map(w => f(w)).join(' + ')} ` +
      `| ${s === undefined ? '–' : f(idleCores(s))} |`)
  }
  L.push('')
  if (ratio !== null && b1 !== null && b2 !== null) {
    const verdict = doubts.length === 0
      ? `, with every worker at its quota (≥ ${SATURATED * 100} % of ${o.workerCores} cores) at each layout's ` +
        `limit and at least ${SPARE_CORES} cores idle on the machine: the workers, not the machine, set both limits.`
      : `; inconclusive: ${doubts.join('; ')}.`
    L.push(
      `Ratio held: b2 ${f(b2.mbps, 0)} ÷ b1 ${f(b1.mbps, 0)} Mbit/s${passesText(c, b1, b2)} = ` +
        `**${f(ratio)}×**${verdict}`,
      ''
    )
  } else L.push(`No ratio: ${doubts.join('; ')}.`, '')
  for (const l of c.layouts) {
    L.push(`### ${l.id} capped${passSuffix(c, l)}: ${l.name}, each worker at ${o.workerCores} of a core`, '')
    if (l.error !== undefined) L.push(`**Failed:** ${l.error}`, '')
    if (l.steps.length > 0) L.push('Every window in the order measured:', '', ...rows(c, l), '')
  }
  return L
}
