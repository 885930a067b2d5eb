/**
 * docs/benchmarks.md and docs/benchmarks.svg from one run's results (results.ts). Every figure in
 * them comes from the results object; nothing is typed in by hand.
 */
import type { BenchResults, ScenarioResult, SetupSummary } from './results.js'
import type { LiveResult, LiveSide, LiveStep } from './live.js'
import { renderCappedScaling, scalingVerdict } from './report-capped.js'
import type { Verdict } from './verdict.js'
import { inWindow, type StepResult } from './window.js'

const COLORS: Record<string, string> = {
  a: '#d62728', b1: '#ff7f0e', b2: '#9467bd', c: '#2ca02c', d: '#1f77b4', e: '#7f7f7f', f: '#8c564b'
}

const f = (
  v: number | null | undefined, d = 2
): string => v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d)
/** Signed difference: "+1.20", "−0.40". */
const sg = (
  v: number | null | undefined, d = 2
): string => v === null || v === undefined || !Number.isFinite(v) ? '–' : (v < 0 ? '−' : '+') + Math.abs(v).toFixed(d)

/** Bytes as KiB; null when not measured. */
function kib (bytes: number | null | undefined): number | null {
  return bytes === null || bytes === undefined ? null : bytes / 1024
}

function byId (r: BenchResults, id: string): ScenarioResult | undefined {
  return r.scenarios.find(s => s.id === id && s.error === undefined) ?? r.scenarios.find(s => s.id === id)
}

/** Added p99 at 50 % against the same window's probes, box first ('–' when not measured). */
function firstAt50 (s: ScenarioResult): string {
  const w = s.delayBoxFirst?.find(x => x.fraction === 0.5)
  const add = w === undefined ? null : inWindow(w)
  return add === null ? '–' : sg(add, 3)
}

/**
 * Added p99 at 50 % against the direct probes of the same window, over the first 50 % window and
 * its repeats (BenchOptions.delayRepeats): every value in the order measured, and their median.
 * Null when no window had probes.
 */
export function added50 (s: ScenarioResult | undefined): {
  values: number[]
  median: number
  windows: StepResult[]
} | null {
  if (s === undefined) return null
  const windows = [delayAt(s, 0.5), ...(s.delayRepeats ?? [])].filter(
    (w): w is StepResult & { fraction: number } => w !== undefined && inWindow(w) !== null
  )
  if (windows.length === 0) return null
  const values = windows.map(w => inWindow(w)!)
  return { values, median: median(values), windows }
}

/** The median of `values` (the mean of the middle two for an even count). */
function median (values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const m = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2
}

/**
 * A box's simultaneous setups over direct: each burst's p50 and p99 minus those of the direct
 * burst just before it, and the medians over the bursts. Results from before the bursts were
 * paired have one burst, set against direct's own (scenario c's, from its phase). Null when
 * either side is missing.
 */
export function burstAdded (s: ScenarioResult | undefined, c: ScenarioResult | undefined): {
  p50: number
  p99: number
  pairs: Array<{ p50: number, p99: number }>
  directP50: number
  directP99: number
  paired: boolean
} | null {
  if (s?.setup === undefined) return null
  const bursts = s.setup.bursts
  if (bursts !== undefined && bursts.length > 0) {
    const pairs = bursts.map(b => ({ p50: b.box.p50 - b.direct.p50, p99: b.box.p99 - b.direct.p99 }))
    return {
      p50: median(pairs.map(x => x.p50)),
      p99: median(pairs.map(x => x.p99)),
      pairs,
      directP50: median(bursts.map(b => b.direct.p50)),
      directP99: median(bursts.map(b => b.direct.p99)),
      paired: true
    }
  }
  if (c?.setup === undefined) return null
  const one = { p50: s.setup.parallel.p50 - c.setup.parallel.p50, p99: s.setup.parallel.p99 - c.setup.parallel.p99 }
  return { ...one, pairs: [one], directP50: c.setup.parallel.p50, directP99: c.setup.parallel.p99, paired: false }
}

/** burstAdded as text: the medians, and each pair's when there were several. */
function burstText (b: NonNullable<ReturnType<typeof burstAdded>>): string {
  return `${sg(b.p50)} ` +
    `/ ${sg(b.p99)}${b.pairs.length > 1 ? ` (${b.pairs.map(x => `${sg(x.p50)} / ${sg(x.p99)}`).join(', ')})` : ''}`
}

/** added50 as text: the median, and every window's value when there were several. */
function added50Text (a: NonNullable<ReturnType<typeof added50>>): string {
  return a.values.length > 1 ? `${sg(a.median, 3)} (${a.values.map(v => sg(v, 3)).join(', ')})` : sg(a.median, 3)
}

function delayAt (s: ScenarioResult | undefined, fraction: number): (StepResult & { fraction: number }) | undefined {
  return s?.delay.find(d => d.fraction === fraction)
}

/** CPU-s not used by the bench's processes (older results lack the machine figures: null). */
function other (s: StepResult): number | null {
  return s.cpuMachine === undefined ? null : Math.max(0, s.cpuMachine - s.cpuBox - s.cpuSource - s.cpuClient)
}
function idle (s: StepResult): number | null {
  return s.cpuMachine === undefined || s.cores === undefined
    ? null
    : Math.max(0, s.cores * s.seconds - s.cpuMachine - (s.cpuSteal ?? 0))
}
/** Box CPU-s, with each process's share when there are several (portal + workers). */
function boxCpu (s: StepResult): string {
  return (s.cpuProcs?.length ?? 0) > 1 ? `${f(s.cpuBox)} (${s.cpuProcs.map(x => f(x)).join(' + ')})` : f(s.cpuBox)
}

/** The scenario held every step of its sweep: its limit lies above the sweep's last step. */
export function heldEveryStep (sc: ScenarioResult | undefined): boolean {
  return sc !== undefined && sc.error === undefined && sc.sweep.length > 0 && heldAndFailed(sc).failed === undefined
}

/** The last sweep step a scenario held, and the first it did not (either may be missing). */
function heldAndFailed (sc: ScenarioResult | undefined): { held?: StepResult, failed?: StepResult } {
  if (sc === undefined) return {}
  const i = sc.sweep.findIndex(x => !x.held)
  const held = (i < 0 ? sc.sweep : sc.sweep.slice(0, i)).at(-1)
  return { held, failed: i < 0 ? undefined : sc.sweep[i] }
}

export interface WorkerScaling {
  ratio: number
  b1Mbps: number
  b2Mbps: number
  cores: number
  /** Source + load generator CPU-s per delivered Gbit at b2's held step. */
  harnessPerGbit: number
  boxPerGbit: number
  /** Cores needed to carry 1.7 × b1's held load through b2 with the source and load generator on the same machine. */
  coresFor17: number
  /** Highest load (Mbit/s) this machine could carry through b2 at those costs, every core busy. */
  machineCeilingMbps: number
  /** CPU-s/s (cores) of b1's relay worker at its first step not held; null when it held every step. */
  b1WorkerCoresAtLimit: number | null
}

/**
 * Worker scaling, accounted for honestly on a machine whose cores also run the source and the
 * load generator: the measured ratio (b2 held / b1 held) and what carrying 1.7 × b1's load
 * through b2 would cost in cores at the CPU per Gbit measured at b2's held step (box + source +
 * load generator), against the cores there are.
 */
export function workerScaling (r: BenchResults): WorkerScaling | null {
  const b1 = byId(r, 'b1')
  const b2 = byId(r, 'b2')
  const h1 = heldAndFailed(b1)
  const h2 = heldAndFailed(b2)
  if (b1 === undefined || b2 === undefined || h1.held === undefined || h2.held === undefined || b1.heldMbps <= 0) {
    return null
  }
  const s = h2.held
  const gbit = (s.deliveredMbps * s.seconds) / 1000
  if (!(gbit > 0)) return null
  const harnessPerGbit = (s.cpuSource + s.cpuClient) / gbit
  const boxPerGbit = s.cpuBox / gbit
  const cores = s.cores ?? r.machine.nproc
  const worker = h1.failed?.cpuProcs !== undefined && h1.failed.cpuProcs.length > 1
    ? h1.failed.cpuProcs.slice(1).reduce((x, y) => x + y, 0) / h1.failed.seconds
    : null
  return {
    ratio: b2.heldMbps / b1.heldMbps,
    b1Mbps: b1.heldMbps,
    b2Mbps: b2.heldMbps,
    cores,
    harnessPerGbit,
    boxPerGbit,
    coresFor17: (1.7 * b1.heldMbps / 1000) * (boxPerGbit + harnessPerGbit),
    machineCeilingMbps: (cores / (boxPerGbit + harnessPerGbit)) * 1000,
    b1WorkerCoresAtLimit: worker
  }
}

/** The setup target: added p50 ≤ 2 ms and p99 ≤ 10 ms. */
function setupMet (p50: number, p99: number): boolean { return p50 <= 2 && p99 <= 10 }

/** The box's CPU per simultaneous setup (µs), the mean over its bursts; null when not read. */
function meanBoxCpu (s: ScenarioResult | undefined): number | null {
  const boxes = s?.setup?.bursts?.map(b => b.box) ?? (s?.setup === undefined ? [] : [s.setup.parallel])
  const parts = boxes.filter(x => x.cpu !== undefined)
  return parts.length === 0 ? null : parts.reduce((n, x) => n + x.cpu!.boxUs, 0) / parts.length
}

/**
 * Whether the setup target is within this machine's reach, from the same run: HAProxy (d), the
 * thinnest forwarder the issue names, in its own paired bursts (median added p50 / p99, and in how
 * many pairs its p50 was over 2 ms), and every box's added p50 beside the CPU it spends per
 * simultaneous setup, in the order of that CPU. When HAProxy misses the target, every box that
 * spent more per setup than HAProxy added more than it did, and tunnelgate (a) is one of them, the
 * target is out of reach here: a box does not add less than HAProxy while spending more. (Boxes
 * costlier than HAProxy need not rank among themselves by CPU: b1 and b2 also wait on the hand-off
 * of each GET to a worker, f on its second hop to the relay node.) Null without d's paired bursts.
 */
export function setupReach (r: BenchResults): {
  p50: number
  p99: number
  p50Over: number
  pairs: number
  boxes: Array<{ id: string, us: number, p50: number }>
  missed: boolean
  costlierAddMore: boolean
  outOfReach: boolean
} | null {
  const c = byId(r, 'c')
  const d = byId(r, 'd')
  const dBurst = burstAdded(d, c)
  if (dBurst === null || !dBurst.paired) return null
  const boxes = (['a', 'b1', 'b2', 'f', 'd', 'e'] as const).flatMap(id => {
    const s = byId(r, id)
    const us = meanBoxCpu(s)
    const b = burstAdded(s, c)
    return us === null || b === null || !b.paired ? [] : [{ id, us, p50: b.p50 }]
  }).sort((x, y) => x.us - y.us)
  const aUs = boxes.find(x => x.id === 'a')?.us
  const dUs = boxes.find(x => x.id === 'd')?.us
  const costlier = dUs === undefined ? [] : boxes.filter(x => x.id !== 'd' && x.us >= dUs)
  const costlierAddMore = costlier.length > 0 && costlier.every(x => x.p50 >= dBurst.p50)
  const missed = !setupMet(dBurst.p50, dBurst.p99)
  return {
    p50: dBurst.p50,
    p99: dBurst.p99,
    p50Over: dBurst.pairs.filter(x => x.p50 > 2).length,
    pairs: dBurst.pairs.length,
    boxes,
    missed,
    costlierAddMore,
    outOfReach: missed && costlierAddMore && aUs !== undefined && dUs !== undefined && aUs >= dUs
  }
}

/** setupReach as text for the setup verdict ('' when HAProxy met the target or was not measured in pairs). */
function reachText (x: ReturnType<typeof setupReach>): string {
  if (x === null || !x.missed) return ''
  const order = x.boxes.map(b => `${b.id} ${f(b.us, 0)} µs ${sg(b.p50)}`).join(', ')
  return `; HAProxy (d), the thinnest forwarder, misses it here too (${sg(x.p50)} / ${sg(x.p99)} ms, its p50 over 2 ` +
    `ms in ${x.p50Over} of ${x.pairs} pairs)` +
    (x.costlierAddMore
      ? `; every box that spent more CPU per setup than HAProxy added more (${order} ms)`
      : `; the boxes' added p50 by their CPU per setup: ${order} ms`) +
    (x.outOfReach ? ', and tunnelgate (a) spends more per setup than HAProxy: **out of reach on this machine**' : '')
}

/**
 * A scenario's setup table: each part's latency and the CPU it cost per setup attempted, the box's
 * beside what the source and the load generator spent in the same span; each burst through the
 * box follows its direct burst (no box there: its box column is a dash).
 */
export function setupRows (id: string, setup: NonNullable<ScenarioResult['setup']>): string[] {
  const cpu = (x: SetupSummary, box: boolean): string => x.cpu === undefined
    ? '– | – | –'
    : `${box && id !== 'c' ? f(x.cpu.boxUs, 0) : '–'} | ${f(x.cpu.sourceUs, 0)} | ${f(x.cpu.clientUs, 0)}`
  const row = (
    name: string, x: SetupSummary, box = true
  ): string => `| ${name} | ${x.n} | ${x.failed} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.max)} | ${cpu(x, box)} |`
  const bursts = setup.bursts ?? []
  return [
    'Setup (GET written → first RTP byte; CPU per setup attempted: over the sequential part with each tunnel\'s ' +
      'close, over a burst from its first GET to its last first RTP byte):',
    '',
    '| | n | failed | p50 ms | p99 ms | max ms | box CPU µs per setup | source CPU µs | load generator CPU µs |',
    '|---|---|---|---|---|---|---|---|---|',
    row('sequential', setup.sequential),
    ...(bursts.length === 0
      ? [row('simultaneous', setup.parallel)]
      : bursts.flatMap(
        (b, i) => [
          row(`direct burst ${i + 1}`, b.direct, false),
          row(
            `simultaneous ${i + 1}${id === 'c' ? ' (direct again)' : ''}, added ${sg(b.box.p50 - b.direct.p50)} ` +
              `/ ${sg(b.box.p99 - b.direct.p99)}`,
            b.box
          )
        ]
      ))
  ]
}

export function verdicts (r: BenchResults): Verdict[] {
  const a = byId(r, 'a')
  const b1 = byId(r, 'b1')
  const b2 = byId(r, 'b2')
  const c = byId(r, 'c')
  const d = byId(r, 'd')
  const out: Verdict[] = []
  // 1. CPU per Gbit against HAProxy at the same loads (the delay phase runs every box at the same N).
  const pairs = (a?.delay ?? []).map(
    x => ({ f: x.fraction, a: x.cpuPerGbit, d: delayAt(d, x.fraction)?.cpuPerGbit ?? null })
  ).filter(p => p.a !== null && p.d !== null && p.d > 0)
  if (pairs.length > 0) {
    const top = pairs[pairs.length - 1]!
    out.push({
      target: 'CPU per delivered Gbit: tunnelgate (a) ≤ 2.0 × HAProxy (d)',
      measured: pairs.map(p => `${f(p.a! / p.d!)}× at ${Math.round(p.f * 100)} %`).join(', ') +
        ` (verdict at ${Math.round(top.f * 100)} %)`,
      met: top.a! / top.d! <= 2.0
    })
  } else {
    out.push({
      target: 'CPU per delivered Gbit: tunnelgate (a) ≤ 2.0 × HAProxy (d)', measured: 'not measured', met: null
    })
  }
  // 2. Setup latency added over direct.
  const aBurst = burstAdded(a, c)
  if (a?.setup !== undefined && c?.setup !== undefined && aBurst !== null) {
    const p50 = a.setup.sequential.p50 - c.setup.sequential.p50
    const p99 = a.setup.sequential.p99 - c.setup.sequential.p99
    const n = a.setup.parallel.n + a.setup.parallel.failed
    const how = aBurst.paired
      ? `median of ${aBurst.pairs.length} bursts, each against a direct burst just before it: ${burstText(aBurst)} ` +
        `ms (verdict on both; the direct bursts' median ${f(aBurst.directP50)} / ${f(aBurst.directP99)} ms)`
      : `${burstText(aBurst)} ms (verdict on both; direct's own ${n} take ${f(aBurst.directP50)} ` +
        `/ ${f(aBurst.directP99)} ms)`
    // The other boxes' simultaneous setups beside it (not the verdict): a burst is bound by the CPU
    // each box spends per setup, given after them (and per burst in each scenario's setup table).
    const burst = [b1, b2, byId(r, 'f'), d, byId(r, 'e'), c].flatMap(x => {
      const b = burstAdded(x, c)
      return b === null || (x === c && !b.paired) ? [] : [`${x!.id} ${sg(b.p50)} / ${sg(b.p99)}`]
    })
    // Whether HAProxy met it in the same bursts, with every box's CPU per setup beside what it added.
    const reach = aBurst.paired ? reachText(setupReach(r)) : ''
    const boxCpu = [a, b1, b2, byId(r, 'f'), d, byId(r, 'e')].flatMap(x => {
      const u = meanBoxCpu(x)
      return u === null ? [] : [`${x!.id} ${f(u, 0)}`]
    })
    out.push({
      target: 'Added setup latency over direct: p50 ≤ 2 ms, p99 ≤ 10 ms',
      measured: `sequential ${sg(p50)} / ${sg(p99)} ms; ${n} ` +
        `simultaneous, ${how}` +
        (burst.length > 0
          ? '; the other boxes\' simultaneous setups (not the ' +
            `verdict${aBurst.paired ? '; c against c is the method\'s noise' : ''}): ${burst.join(', ')} ms`
          : '') +
        (reach === '' && boxCpu.length > 0 ? `; the box's CPU per simultaneous setup: ${boxCpu.join(', ')} µs` : reach),
      met: setupMet(p50, p99) && setupMet(aBurst.p50, aBurst.p99)
    })
  } else {
    out.push({
      target: 'Added setup latency over direct: p50 ≤ 2 ms, p99 ≤ 10 ms', measured: 'not measured', met: null
    })
  }
  // 3. Added per-packet delay at 50 %: against the direct probes of the same window when the run
  // had them (inWindow), else against direct's own window.
  const a50 = delayAt(a, 0.5)
  const c50 = delayAt(c, 0.5)
  const aa = added50(a)
  if (a50 !== undefined && aa !== null) {
    const aw = aa.median
    const clean = aa.windows.every(w => w.late === 0 && w.lost === 0 && w.probeLate === 0)
    const quiet = aa.windows.every(w => w.disturbed !== true)
    const others = [b1, b2, byId(r, 'f'), d, byId(r, 'e'), c].flatMap(x => {
      const add = added50(x)
      return x === undefined || add === null ? [] : [`${x.id} ${added50Text(add)}`]
    })
    const how = aa.values.length > 1
      ? `verdict on a, the median of its ${aa.values.length} windows at 50 % (the first in its delay phase, the ` +
        'others one per round through every scenario, each on the box started afresh), each against the direct ' +
        `probes in the same window: ${added50Text(aa)} ms (first window: a p99 ${f(a50.delayMs.p99, 3)} ms ` +
        `over ${a50.tunnels} tunnels, direct probes p99 ${f(a50.probeDelayMs!.p99, 3)} ms ` +
        `over ${r.options.delayProbes ?? '–'})`
      : `verdict on a, against direct probes in the same window: ${sg(aw, 3)} ms (a p99 ${f(a50.delayMs.p99, 3)} ms ` +
        `over ${a50.tunnels} tunnels, direct probes p99 ${f(a50.probeDelayMs!.p99, 3)} ms ` +
        `over ${r.options.delayProbes ?? '–'})`
    const across = c50 !== undefined && c50.delayMs.n > 0
      ? `; against direct's own window instead: ${sg(a50.delayMs.p99 - c50.delayMs.p99, 3)} ms (direct ` +
        `p99 ${f(c50.delayMs.p99, 3)} ms)`
      : ''
    const first = [a, b1, b2, byId(r, 'f'), d, byId(r, 'e')].flatMap(
      x => x?.delayBoxFirst === undefined ? [] : [`${x.id} ${firstAt50(x)}`]
    )
    const firstText = first.length > 0
      ? `; box first (the box's threads at nice ${r.options.boxFirstNice ?? '–'}, as on a host of its own; not the ` +
        `verdict): ${first.join(', ')} ms`
      : ''
    out.push({
      target: 'Added per-packet delay at 50 % of held load: p99 ≤ 1 ms',
      measured: `${how}` +
        (others.length > 0
          ? `; the other scenarios measured the same way (not the verdict): ${others.join(', ')} ms`
          : '') +
        `${firstText}${across}${clean ? '' : '; inconclusive: late or lost packets in a window'}` +
        `${quiet ? '' : '; inconclusive: other processes took part of the machine in a window (disturbed)'}`,
      met: clean && quiet ? aw <= 1 : null
    })
  } else if (a50 !== undefined && c50 !== undefined && a50.delayMs.n > 0 && c50.delayMs.n > 0) {
    const add = a50.delayMs.p99 - c50.delayMs.p99
    const clean = a50.late === 0 && c50.late === 0 && a50.lost === 0 && c50.lost === 0
    const quiet = a50.disturbed !== true && c50.disturbed !== true
    // The other boxes at the same load, for scale (not the verdict): a third busy process on 2 cores
    // (source, load generator, box) waits for a core, which HAProxy's p99 shows as much as ours.
    const others = [b1, b2, byId(r, 'f'), d, byId(r, 'e')].flatMap(x => {
      const w = delayAt(x, 0.5)
      return x === undefined || w === undefined || w.delayMs.n === 0
        ? []
        : [`${x.id} ${sg(w.delayMs.p99 - c50.delayMs.p99, 3)}`]
    })
    const beside = others.length > 0
      ? `; the other boxes in the same run (not the verdict): ${others.join(', ')} ms`
      : ''
    out.push({
      target: 'Added per-packet delay at 50 % of held load: p99 ≤ 1 ms',
      measured: `verdict on a: ${sg(add, 3)} ms (a p99 ${f(a50.delayMs.p99, 3)} ms, direct ${f(c50.delayMs.p99, 3)} ` +
        `ms, ${a50.tunnels} ` +
        `tunnels)${beside}${clean ? '' : '; inconclusive: late or lost packets in one of the two windows'}` +
        (quiet ? '' : '; inconclusive: other processes took part of the machine in one of the two windows (disturbed)'),
      met: clean && quiet ? add <= 1 : null
    })
  } else {
    out.push({ target: 'Added per-packet delay at 50 % of held load: p99 ≤ 1 ms', measured: 'not measured', met: null })
  }
  // 4. Memory and 10,000 paused tunnels: carried by b2, the default layout on this 2-core machine
  // (`workers: auto`), whose two relay workers share the descriptors; a single process (a) is
  // capped by the open-files hard limit (2 per paused tunnel), its figures are shown beside.
  const memTarget = 'Memory ≤ 32 KiB per paused tunnel; 10,000 paused tunnels held'
  const carrier = b2?.scale !== undefined ? b2 : a?.scale !== undefined ? a : undefined
  if (carrier?.scale !== undefined) {
    const sc = carrier.scale
    const rss = kib(sc.bytesPerTunnel)
    const heap = kib(sc.heapBytesPerTunnel)
    const held = sc.opened >= 10000 && sc.keepaliveAnswered >= 10000
    const aNote = carrier.id !== 'a' && a?.scale !== undefined
      ? `; a (one process): ${a.scale.opened} of ${a.scale.limit ?? a.scale.requested} ` +
        `held${a.scale.capReason ? ` (capped: ${a.scale.capReason})` : ''}, ${a.scale.keepaliveAnswered} keepalives ` +
        `answered, ${f(kib(a.scale.bytesPerTunnel), 1)} KiB RSS / ` +
        `${f(kib(a.scale.heapBytesPerTunnel), 1)} KiB heap per tunnel`
      : ''
    out.push({
      target: memTarget,
      measured: `verdict on ${carrier.id} ` +
        `(${carrier.name}${carrier.id === 'b2' ? ', the default `workers: auto` layout on 2 cores' : ''}): ` +
        `${f(rss, 1)} KiB RSS per tunnel (${f(heap, 1)} KiB V8 heap + ` +
        `external)${sc.gc === true ? ' after a forced GC' : ''}; ${sc.opened} of ${sc.requested} ` +
        `held, ${sc.keepaliveAnswered} keepalives answered${aNote}`,
      met: sc.requested < 10000 ? null : (rss !== null && rss <= 32 && held)
    })
  } else out.push({ target: memTarget, measured: 'not measured', met: null })
  // 5. Workers scale: uncapped (the machine's cores shared with the source and the load generator),
  // and with each relay worker capped (capped-scaling.ts), which decides when it is conclusive.
  const scalingTarget = 'Throughput scales with relay workers: 2 workers ≥ 1.7 × 1 worker'
  let uncapped: Verdict
  const ws = workerScaling(r)
  if (ws !== null) {
    const reach = ws.coresFor17 > ws.cores
      ? `; out of reach on this machine: carrying 1.7 × ${f(ws.b1Mbps, 0)} Mbit/s through b2 ` +
        `costs ${f(ws.coresFor17)} cores (b2 ${f(ws.boxPerGbit, 3)} + source and load ` +
        `generator ${f(ws.harnessPerGbit, 3)} CPU-s per Gbit) of the ${ws.cores} there are, whose ceiling at those ` +
        `costs is ${f(ws.machineCeilingMbps, 0)} Mbit/s (see "Worker scaling")`
      : `; within reach here: 1.7 × b1 needs ${f(ws.coresFor17)} of ${ws.cores} cores`
    const ended = [
      ['b1', heldAndFailed(b1).failed], ['b2', heldAndFailed(b2).failed]
    ].filter(([, x]) => (x as StepResult | undefined)?.disturbed === true).map(([id]) => id as string)
    const note = ended.length > 0
      ? `; inconclusive: the window that ended ${ended.join(' and ')}'s sweep was disturbed by other processes`
      : ''
    uncapped = {
      target: scalingTarget,
      measured: `${f(ws.ratio)}× (${f(ws.b2Mbps, 0)} vs ${f(ws.b1Mbps, 0)} Mbit/s held)${reach}${note}`,
      met: ended.length > 0 ? null : ws.ratio >= 1.7
    }
  } else if (b1 !== undefined && b2 !== undefined && b1.heldMbps > 0) {
    const ratio = b2.heldMbps / b1.heldMbps
    uncapped = {
      target: scalingTarget,
      measured: `${f(ratio)}× (${f(b2.heldMbps, 0)} vs ${f(b1.heldMbps, 0)} Mbit/s held)`,
      met: ratio >= 1.7
    }
  } else {
    uncapped = {
      target: scalingTarget,
      measured: b1 === undefined || b2 === undefined
        ? 'not measured'
        : `no ratio: 1 worker held ${b1.heldMbps.toFixed(0)} Mbit/s, 2 workers ${b2.heldMbps.toFixed(0)} Mbit/s`,
      met: null
    }
  }
  out.push(scalingVerdict(uncapped, r.cappedScaling))
  return out
}

function scaleLine (s: ScenarioResult): string {
  const sc = s.scale!
  const kibText = (v: number | null | undefined): string => f(kib(v), 1)
  const cap = sc.capReason !== null && sc.capReason !== undefined
    ? ` (of ${sc.requested} requested: capped at ${sc.limit} by the ${sc.capReason})`
    : ''
  const errors = Object.entries(sc.openErrors ?? {}).map(([m, n]) => `${n} × ${m}`).join(', ')
  const mem = s.id === 'c'
    ? 'no middle box'
    : `middle-box RSS ${f(sc.rssBeforeMB, 0)} → ${f(sc.rssAfterMB, 0)} MB = **${kibText(sc.bytesPerTunnel)} KiB per ` +
      'tunnel**' +
      (sc.heapBeforeMB !== null && sc.heapBeforeMB !== undefined && sc.heapAfterMB !== null &&
        sc.heapAfterMB !== undefined
        ? `; V8 heap used + external ${f(sc.heapBeforeMB, 1)} → ${f(sc.heapAfterMB, 1)} MB = ` +
          `**${kibText(sc.heapBytesPerTunnel)} KiB per tunnel**`
        : '; no heap figure (not a Node process)') +
      (sc.gc === true ? ', both read after two forced full GCs in every box process' : ', read without a forced GC')
  return `Scale: ${sc.opened} paused tunnels held${cap}, opened in ${f(sc.openSeconds, 1)} ` +
    `s${errors !== '' ? ` (failed: ${errors})` : ''}, ${sc.keepaliveAnswered} keepalives answered; ${mem}.`
}

function stepRows (steps: StepResult[], direct: ScenarioResult | undefined, byFraction = false): string[] {
  const probes = byFraction && steps.some(s => s.probeDelayMs !== undefined)
  const rows = [
    `| ${byFraction ? 'load | ' : ''}tunnels × kbit/s | offered Mbit/s | delivered Mbit/s | lost | late | box CPU-s ` +
      '| box CPU-s/Gbit | source CPU-s | client CPU-s | other CPU-s | idle CPU-s | box GC: n / total / longest ms | ' +
      'load generator stalls: p99 / longest ms | delay p50 / p99 / p99.9 ms ' +
      `| ${probes ? 'direct probes in the window: p99 ms (lost + late) | added p99 over them ms | ' : ''}added p99 ` +
      `over direct${probes ? '\'s own window' : ''} ms | box RSS MB |`,
    `|${byFraction ? '---|' : ''}` +
      `${probes ? '---|---|' : ''}---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`
  ]
  for (const s of steps) {
    const fr = (s as StepResult & { fraction?: number }).fraction
    const dir = direct === undefined
      ? undefined
      : (fr !== undefined ? delayAt(direct, fr) : direct.sweep.find(x => x.tunnels === s.tunnels))
    const added = dir !== undefined && dir.delayMs.n > 0 && s.delayMs.n > 0 ? s.delayMs.p99 - dir.delayMs.p99 : null
    rows.push(`| ${byFraction ? `${Math.round((fr ?? 0) * 100)} % | ` : ''}${s.tunnels} ` +
      `× ${s.kbps}${s.disturbed === true ? ' (disturbed)' : ''} | ${f(s.offeredMbps, 0)} | ${f(s.deliveredMbps, 0)} ` +
      `| ${s.lost} | ${s.late} | ${boxCpu(s)} | ${f(s.cpuPerGbit, 3)} | ${f(s.cpuSource)} | ${f(s.cpuClient)} ` +
      `| ${f(other(s))} | ${f(idle(s))} ` +
      '| ' + (s.gc === null || s.gc === undefined
        ? '–'
        : `${s.gc.count} / ${f(s.gc.totalMs, 1)} ` +
          `/ ${f(s.gc.maxMs, 1)}`) + ' | ' + (s.clientStallMs === undefined
        ? '–'
        : `${f(s.clientStallMs.p99, 1)} / ${f(s.clientStallMs.max, 1)}`) + ` | ${f(s.delayMs.p50, 3)} ` +
            `/ ${f(s.delayMs.p99, 3)} / ${f(s.delayMs.p999, 3)} ` +
            '| ' + (probes
        ? `${s.probeDelayMs === undefined ? '–' : `${f(s.probeDelayMs.p99, 3)} (${s.probeLate ?? 0})`} ` +
                `| ${inWindow(s) === null ? '–' : sg(inWindow(s)!, 3)} | `
        : '') + `${added === null ? '–' : sg(added, 3)} | ${f(s.boxRssMB, 0)} |`)
  }
  return rows
}

/** The worker-scaling section: where the machine's CPU went at b1's and b2's limits (and a's, for reference). */
function renderWorkerScaling (r: BenchResults): string[] {
  const rows: string[] = []
  for (const id of ['a', 'b1', 'b2']) {
    const sc = byId(r, id)
    const { held, failed } = heldAndFailed(sc)
    for (const [label, s] of [['last held', held], ['first not held', failed]] as const) {
      if (s === undefined) continue
      const per = (v: number | null): string => f(v === null ? null : v / s.seconds)
      const procs = (s.cpuProcs?.length ?? 0) > 1 ? ` (${s.cpuProcs.map(x => f(x / s.seconds)).join(' + ')})` : ''
      rows.push(`| ${id} | ${label}${s.disturbed === true ? ' (disturbed)' : ''} | ${s.tunnels} ` +
        `| ${f(s.deliveredMbps, 0)} | ${s.lost} / ${s.late} | ${per(s.cpuBox)}${procs} | ${per(s.cpuSource)} ` +
        `| ${per(s.cpuClient)} | ${per(other(s))} | ${per(idle(s))} |`)
    }
  }
  if (rows.length === 0) return []
  const cores = r.machine.nproc
  const L = ['## Worker scaling: where the CPU went', '']
  L.push(
    `The source and the load generator run on the same ${cores} cores as the middle box, so every Gbit/s carried ` +
      'costs the box\'s CPU **plus** theirs. CPU-s per second (cores busy) at each layout\'s last held sweep step ' +
      'and ' +
      'its first step not held; *other* is the machine\'s busy time (/proc/stat) not used by these processes (kernel ' +
      'softirq work for loopback TCP not charged to a process, and anything else that ran), *idle* what nobody ' +
      'used.' + (r.options.otherCpuMax === undefined
      ? ' (not recorded by this run: its results predate the machine-wide accounting).'
      : ` A window where other processes took more than ${Math.round(r.options.otherCpuMax * 100)} % of the ` +
          `machine was measured again (up to ${r.options.disturbedRetries} times) and is marked *disturbed* if it ` +
          'stayed so.'),
    ''
  )
  L.push(
    '| scenario | step | tunnels | delivered Mbit/s | lost / late | box cores (portal + workers) | source cores | ' +
      'load generator cores | other cores | idle cores |',
    '|---|---|---|---|---|---|---|---|---|---|', ...rows, ''
  )
  const ws = workerScaling(r)
  if (ws !== null) {
    const gb = ws.boxPerGbit + ws.harnessPerGbit
    const topped = ['b1', 'b2'].filter(id => heldEveryStep(byId(r, id)))
    L.push(`Ratio held: b2 ${f(ws.b2Mbps, 0)} ÷ b1 ${f(ws.b1Mbps, 0)} Mbit/s = ` +
      `**${f(ws.ratio)}×**` +
      (topped.length > 0
        ? ` (${topped.join(' and ')} held every sweep ` +
          `step: ${topped.length > 1 ? 'their limits are' : 'its limit is'} higher, so the ratio is a bound, not a ` +
          'measurement)'
        : '') + `. At b2's last held step each delivered Gbit cost ${f(ws.boxPerGbit, 3)} CPU-s in the box ` +
        `and ${f(ws.harnessPerGbit, 3)} CPU-s in the source and load generator: ${f(gb, 3)} CPU-s per Gbit of this ` +
        `machine, so its ${ws.cores} cores carry at most ${f(ws.machineCeilingMbps, 0)} Mbit/s through b2 however ` +
        `many workers it has. 1.7 × b1 = ${f(1.7 * ws.b1Mbps, 0)} Mbit/s would need ${f(ws.coresFor17)} ` +
        'cores: ' + (ws.coresFor17 > ws.cores
        ? '**the 1.7× target is out of reach on this machine** (the source and load generator alone would ' +
            `need ${f((1.7 * ws.b1Mbps / 1000) * ws.harnessPerGbit)} cores); it needs the load on other machines, or ` +
            'b1 limited by its worker rather than by the machine'
        : 'within reach of this machine') + '.')
    if (ws.b1WorkerCoresAtLimit !== null) {
      L.push(
        '',
        `b1's one relay worker used ${f(ws.b1WorkerCoresAtLimit)} cores at its first step not ` +
          'held: ' + (ws.b1WorkerCoresAtLimit >= 0.9
          ? 'it was saturated, so b1 was limited by its worker'
          : 'it was NOT saturated, so b1 was limited by the machine (shared with the source and load generator), ' +
              'not by its worker; the ratio then measures the machine, not worker scaling') + '.'
      )
    }
    L.push('')
  }
  return L
}

/** Which run each section's figures come from (sections can come from different runs: run.ts mergeResults). */
function provenance (r: BenchResults): string[] {
  const boxes = r.scenarios.length > 0 || r.micro.length > 0
  const L = ['', '| section | from the run of | profile | run took |', '|---|---|---|---|']
  if (boxes) {
    L.push(`| micro-benchmarks, scenarios ${r.scenarios.map(s => s.id).join(', ')} and the targets | ${r.date} ` +
      `| ${r.profile} | ${f(r.durationSeconds / 60, 1)} min |`)
  } else { L.push('| micro-benchmarks, scenarios a–f and the targets | not measured yet | – | – |') }
  if (r.live !== undefined) {
    L.push(`| live (viewers per core on one live stream) | ${r.live.date} | ${r.live.profile} ` +
      `| ${f(r.live.durationSeconds / 60, 1)} min |`)
  } else { L.push('| live (viewers per core on one live stream) | not measured yet | – | – |') }
  if (r.cappedScaling !== undefined) {
    L.push(`| worker scaling with capped workers | ${r.cappedScaling.date} | ${r.cappedScaling.profile} ` +
      `| ${f(r.cappedScaling.durationSeconds / 60, 1)} min |`)
  } else { L.push('| worker scaling with capped workers | not measured yet | – | – |') }
  return L
}

export function renderMarkdown (r: BenchResults): string {
  const m = r.machine
  const o = r.options
  const c = byId(r, 'c')
  const L: string[] = []
  L.push('# Benchmarks', '')
  L.push(`> Generated by \`tunnelgate bench\` (profile **${r.profile}**) on ${r.date}; the run ` +
    `took ${f(r.durationSeconds / 60, 1)} min.`)
  L.push('> Do not edit by hand: `npm run bench` (or `tunnelgate bench`) rewrites this file, `benchmarks.json` (raw ' +
    'results) and `benchmarks.svg`; `tunnelgate bench --scenarios live --out docs` re-measures only the live section ' +
    'and merges it in, `--scenarios scaling` only the capped worker scaling.')
  if (r.profile !== 'full') {
    L.push(`> **This is a ${r.profile} run**: fewer tunnels and shorter windows than the full bench; its figures are ` +
      'indicative only.')
  }
  L.push(...provenance(r))
  L.push('', '## Machine', '', '| | |', '|---|---|')
  L.push(
    `| CPUs (nproc) | ${m.nproc} × ${m.cpu} |`, `| kernel | Linux ${m.kernel} |`, `| Node.js | ${m.node} |`,
    `| HAProxy | ${m.haproxy ?? 'not installed'} |`, `| ffmpeg | ${m.ffmpeg ?? '–'} |`,
    `| GStreamer | ${m.gstreamer ?? '–'} |`, `| load average at start | ${m.loadavg} |`
  )
  L.push(
    '',
    'Everything runs on this one machine: the load generator (one Node process), the bench source (one Node process) ' +
      'and the middle box under test share its cores, so absolute figures depend on the machine and on whatever else ' +
      'runs; compare scenarios by the ratios below, all taken in this one run.'
  )
  L.push('', '## Targets (issue #6), from this run', '', '| target | measured | met? |', '|---|---|---|')
  for (const v of verdicts(r)) {
    L.push(`| ${v.target} | ${v.measured} ` +
      `| ${v.met === null ? 'not decided by this run' : v.met ? '**met**' : '**not met**'} |`)
  }
  const aHeld = byId(r, 'a')?.heldTunnels ?? 0
  L.push(
    '', '## Summary', '',
    `Reference load for the delay phase: ${r.referenceTunnels} tunnels × ${o.kbps} kbit/s ` +
      '(' + (aHeld > 0
      ? 'the highest load tunnelgate all-in-one held in its sweep'
      : 'tunnelgate all-in-one held no sweep step without a late packet, so the first step is ' +
          'used') + '); every scenario is measured at the same fractions of it.',
    ''
  )
  const boxFirst = r.scenarios.some(s => s.delayBoxFirst !== undefined)
  L.push('| scenario | held load (tunnels / Mbit/s) | CPU-s per Gbit at ' +
    o.delayFractions.map(x => `${Math.round(x * 100)} %`).join(' / ') +
    ' | setup p50 / p99 ms (sequential) | added over direct | delay p99 at 50 % ms | added over direct' +
    (o.delayProbes !== undefined && o.delayProbes > 0
      ? ' (probes in the same ' +
        'window' + ((o.delayRepeats ?? 0) > 0
        ? `; median of the ${1 + (o.delayRepeats ?? 0)} windows at 50 %, each in brackets`
        : '') + ')'
      : '') +
    (boxFirst ? ' | the same, box first' : '') + ' | paused tunnels held | KiB per tunnel (RSS / heap) |')
  L.push('|---|---|---|---|---|---|---|---|---|' + (boxFirst ? '---|' : ''))
  for (const s of r.scenarios) {
    const cpu = o.delayFractions.map(x => f(delayAt(s, x)?.cpuPerGbit, 3)).join(' / ')
    const su = s.setup?.sequential
    const addSetup = su !== undefined && c?.setup !== undefined
      ? `${sg(su.p50 - c.setup.sequential.p50)} / ${sg(su.p99 - c.setup.sequential.p99)}`
      : '–'
    const d50 = delayAt(s, 0.5)
    const c50 = delayAt(c, 0.5)
    const a50s = added50(s)
    const w50 = a50s === null ? null : a50s.median
    const addDelay = a50s !== null
      ? added50Text(a50s)
      : d50 !== undefined && c50 !== undefined && d50.delayMs.n > 0 && c50.delayMs.n > 0
        ? sg(d50.delayMs.p99 - c50.delayMs.p99, 3)
        : '–'
    L.push(`| ${s.id}: ${s.name}${s.error !== undefined ? ` (failed: ${s.error})` : ''} | ${s.heldTunnels} ` +
      `/ ${f(s.heldMbps, 0)}` +
      `${heldAndFailed(s).failed?.disturbed === true ? ' (sweep ended by a disturbed window)' : ''}` +
      `${heldEveryStep(s) ? ' (every sweep step held: the limit is higher)' : ''} ` +
      `| ${s.id === 'c' ? 'no middle box' : cpu} | ${f(su?.p50)} / ${f(su?.p99)} ` +
      `| ${s.id === 'c' ? 'baseline' : addSetup} | ${f(d50?.delayMs.p99, 3)} ` +
      `| ${s.id === 'c' && w50 === null ? 'baseline' : addDelay} ` +
      `|${boxFirst ? ` ${firstAt50(s)} |` : ''} ` +
      `${s.scale === undefined ? '–' : `${s.scale.opened} / ${s.scale.requested}`} ` +
      '| ' + (s.id === 'c' || s.scale === undefined
        ? '–'
        : `${f(kib(s.scale.bytesPerTunnel), 1)} / ${f(kib(s.scale.heapBytesPerTunnel), 1)}`) + ' |')
  }
  L.push('', '![CPU per delivered Gbit and added p99 delay against load](benchmarks.svg)', '')
  L.push(...renderWorkerScaling(r))
  if (r.cappedScaling !== undefined) L.push(...renderCappedScaling(r.cappedScaling))
  for (const s of r.scenarios) {
    L.push(`## ${s.id}: ${s.name}`, '')
    if (s.error !== undefined) L.push(`**Failed:** ${s.error}`, '')
    if (s.scale !== undefined) L.push(scaleLine(s), '')
    if (s.setup !== undefined) { L.push(...setupRows(s.id, s.setup), '') }
    if (s.sweep.length > 0) {
      L.push(
        'Throughput sweep (stops at the first step with a lost or late packet, a failed tunnel, or < 97 % delivered, ' +
          'measured twice):',
        '', ...stepRows(s.sweep, s.id === 'c' ? undefined : c), ''
      )
    }
    if (s.delay.length > 0) {
      L.push(
        `One-way delay at fractions of the reference load (${r.referenceTunnels} tunnels):`, '',
        ...stepRows(s.delay, s.id === 'c' ? undefined : c, true), ''
      )
    }
    if (s.delayRepeats !== undefined && s.delayRepeats.length > 0) {
      L.push(
        'The 50 % window measured again, one window per round through every scenario after all of them had run, each ' +
          'on the box started afresh (the delay verdict takes the median of these and the first):',
        '', ...stepRows(s.delayRepeats, c, true), ''
      )
    }
    if (s.delayBoxFirst !== undefined && s.delayBoxFirst.length > 0) {
      L.push(
        `The same windows with the box first (every thread of the box at nice ${o.boxFirstNice ?? '–'}; see Method):`,
        '', ...stepRows(s.delayBoxFirst, c, true), ''
      )
    }
    if (s.boxFirstSkipped !== undefined) L.push(`Box-first windows not measured: ${s.boxFirstSkipped}.`, '')
  }
  if (r.live !== undefined) L.push(...renderLive(r.live))
  L.push(
    '## Micro-benchmarks of the hot path', '',
    'Each subject is timed against a baseline in the same process, interleaved (median of 3 rounds). The leg ' +
      'hand-off rows (`bench/src/ipc-handoff.ts`) time how fast the portal can pass accepted sockets to a relay ' +
      'worker process, which bounds b1\'s and b2\'s simultaneous setups: Node passes one socket per IPC message and ' +
      'sends the next only after the worker has acknowledged the last, so the hand-offs to one worker are paced by ' +
      'round trips through both event loops; the baseline is the same messages without a socket.',
    ''
  )
  L.push('| subject | ns per op | baseline | baseline ns | ratio |', '|---|---|---|---|---|')
  for (const x of r.micro) {
    L.push(`| ${x.name} | ${f(x.nsPerOp, 0)} per ${x.unit} | ${x.baseline} | ${f(x.baselineNsPerOp, 0)} ` +
      `| ${f(x.ratio)} × |`)
  }
  L.push('', '## Method', '')
  L.push('- **Code**: the bench package `bench/` of the repository (its own package.json, not published). It starts ' +
    'every tunnelgate box through the compiled `tunnelgate` bin as a child process and uses only the gateway\'s ' +
    'package exports: `tunnelgate/codec` (the bench source, the micro-benchmarks), `tunnelgate/metrics` (the ' +
    'byte-counting micro-benchmark) and `tunnelgate/rtp` (the stamp profile).')
  const phases = o.phases ?? 1
  L.push('- **Source**: `bench/src/source.ts`, one Node process for the whole run. It serves ' +
    `\`rtsp://…/b/<kbit/s>\` with synthetic RTP (1400-byte packets, ${o.tickMs} ms pacing tick: a session's due ` +
    'packets leave in one write), over plain RTSP/TCP (tunnelgate\'s relays) and over the QuickTime tunnel, which it ' +
    'terminates itself (direct, HAProxy, raw relay). Above 1 MiB unsent on a socket it drops due packets (live ' +
    'semantics), which the receiver counts as lost.')
  L.push(phases > 1
    ? `- **Sessions are not phase locked** (\`--phases ${phases}\`): the ${o.tickMs} ms tick is cut into ${phases} ` +
      `slots (a timer every ${f(o.tickMs / phases, 1)} ms) and each session is sent in its own slot, the slots taken ` +
      'in turn as sessions start. Independent real streams are not synchronised; with one burst per tick for all ' +
      'sessions (`--phases 1`, the earlier method) a middle box had to forward hundreds of packets at once and the ' +
      'p99 measured how long that burst took to drain, not what a packet waits in the box. The same source, the same ' +
      'schedule and the same load generator serve every scenario (direct and HAProxy included): the box sees the ' +
      'same packets per second, only spread as independent streams would be. Processes are not pinned to CPUs: ' +
      'pinning the box to one core would cap b2\'s second worker, and pinning only during the delay phase would ' +
      'change the box between phases; instead every window records where the machine\'s CPU went (below).'
    : '- **Sessions are phase locked** (`--phases 1`): every session\'s due packets leave in one burst per tick, so ' +
      'a middle box forwards the whole burst at once and the p99 delay includes the burst\'s drain time.')
  L.push('- **Stamp**: each RTP packet carries a header extension (profile 0x544E) with the sender\'s ' +
    '`process.hrtime.bigint()` at write time; CLOCK_MONOTONIC is shared by all processes, so the load generator ' +
    'reads one-way delay directly. The embedded origin writes the same extension with `stampPayloads` ' +
    '(docs/origin.md).')
  L.push('- **Load generator**: `bench/src/load.ts`, one process: GET + POST, DESCRIBE / SETUP / PLAY base64 on ' +
    `the POST, interleaved RTP read in place; sequence gaps = lost, delay > ${o.lateMs} ms = late. Keepalive is ` +
    'GET_PARAMETER. Every GET\'s reads land in one buffer the process reuses (net.connect `onread`), never a Buffer ' +
    'per read. Runs from before that change (their JSON has no `clientStallMs`) allocated one per read, and those ' +
    'Buffers (about 125 MB/s of external memory at 1 Gbit/s) made V8 run a full mark-compact about twice a second, ' +
    'each stalling it 5–15 ms, which put 6–15 ms into the p99 delay of every window, the direct probes\' included. ' +
    'Each window records the load generator\'s event-loop stalls (`monitorEventLoopDelay` at 1 ms resolution; the ' +
    'stall beyond that 1 ms, p99 and longest): a stall delays the box\'s tunnels and the direct probes alike.')
  L.push('- **CPU** of a middle box: utime + stime from `/proc/<pid>/stat` of its processes only (portal and ' +
    'workers for b1/b2, each shown) over the measurement window, divided by the Gbit delivered to the clients (RTP ' +
    'frames incl. the 4-byte `$` header). Source and client (load generator) CPU are reported beside it; for the ' +
    'Node boxes (tunnelgate, raw relay) the garbage collections during the window too (count, total pause, longest ' +
    'pause — only pauses of 1 ms or more are timed individually, so 0 means none that long; from ' +
    '`PerformanceObserver(\'gc\')` in the bench\'s gc-hook preload, read on SIGURG without collecting), so a stall ' +
    'can be told from a GC pause; and the whole machine\'s busy, stolen and idle time from `/proc/stat`: *other* = ' +
    'busy time not used by the box, source or load generator. A window where other processes took more ' +
    `than ${Math.round((o.otherCpuMax ?? 0.15) * 100)} % of the machine is measured again, up ` +
    `to ${o.disturbedRetries ?? 0} times, and marked *disturbed* if it stays so: a window shared with something else ` +
    'measures that, not the box (a step whose box, source and load generator all get less CPU than at the step ' +
    'before, while packets turn late, is the sign).')
  L.push(`- **Windows**: sweep steps of ${o.steps.join(', ')} tunnels × ${o.kbps} kbit/s, ${o.warmSeconds} s ` +
    `warm-up, ${o.stepSeconds} s measured (a step that fails is measured once more before the sweep stops); delay ` +
    `phase ${o.delaySeconds} s per fraction; ${o.setupSequential} sequential setups, ` +
    'then ' + ((o.setupBursts ?? 1) > 1
      ? `${o.setupBursts} bursts of ${o.setupParallel} simultaneous ones, each through the box just after one ` +
        'straight to the source (direct, the box idle), so that a burst\'s added p50 and p99 are read against direct ' +
        'a moment before, not against direct\'s own phase minutes away; the verdict takes the median over the pairs ' +
        '(for c the pairs are direct against direct: the method\'s noise)'
      : `${o.setupParallel} simultaneous ones`) + '; each part\'s CPU per setup read for every thread of the box\'s ' +
      'processes and the source from the scheduler\'s run time in ns (`/proc/<pid>/task/<tid>/schedstat`: a burst ' +
      `of ${o.setupParallel} lasts a few 10 ms clock ticks) and for the load generator from \`process.cpuUsage()\`.`)
  L.push(`- **Scale** (scenarios ${o.scaleScenarios.join(', ')}): ${o.scaleTunnels} paused tunnels requested, each ` +
    'opened as QuickTime does — GET, POST, DESCRIBE, SETUP, PLAY, first RTP byte, PAUSE answered, POST closed — ' +
    `before its slot opens the next (${o.scaleConcurrency ?? '–'} slots, at most ${o.scaleOpenSeconds ?? '–'} s), so ` +
    `the tunnels already held are idle while the rest open; their connections come from ${o.scaleAddresses ?? 1} ` +
    `loopback addresses (127.0.0.1–${o.scaleAddresses ?? 1}) so no address runs short of ephemeral ports. Then one ` +
    'GET_PARAMETER keepalive round on a fresh POST per tunnel, every answer checked. **Memory per tunnel** = (after ' +
    '− before) / tunnels held, over all the box\'s processes: RSS from `/proc`, and for the Node boxes (tunnelgate, ' +
    'raw relay) V8 heap used + external (incl. socket ArrayBuffers) from `process.memoryUsage()`, both read after ' +
    'two forced full GCs: the bench preloads `bench/src/gc-hook.ts` (`--expose-gc`, a SIGUSR2 handler; relay ' +
    'workers inherit it) into the box — the gateway has no GC hook of its own. RSS also counts pages V8 keeps after ' +
    'the GC and allocator slack; the heap figure is what the tunnels themselves hold; kernel socket buffers are in ' +
    'neither. tunnelgate\'s external memory includes each session\'s backend read buffer (`backend.readBufferBytes`, ' +
    '16 KiB by default) in full, of which RSS counts only the pages its reads have touched.')
  L.push('- **Open-files limit**: the hard limit here caps what one process can hold (it cannot be raised without ' +
    'CAP_SYS_RESOURCE). A middle-box process holds 2 descriptors per paused tunnel (GET + upstream), so a ' +
    'single-process box — tunnelgate all-in-one (a), b1\'s one worker, HAProxy (d), the raw relay (e) — is capped ' +
    'near half the limit, and the scale line of each scenario says so. b2, the default layout on this 2-core machine ' +
    '(`workers: auto` = one relay worker per core), spreads the tunnels over 2 worker processes (the portal hands ' +
    'the legs over and keeps none), so it can hold 10,000: it carries the 10,000-tunnel verdict. The source holds 1 ' +
    'descriptor per tunnel and the load generator 1 per held tunnel plus those in flight, both under the limit.')
  L.push('- **tunnelgate settings**: defaults, except `limits.maxTunnelsPerIp: 0`, `limits.maxUnpairedLegsPerIp: 0` ' +
    'and `limits.maxUnpairedLegs: 100000` (every bench client is 127.0.0.1); a = `--workers 0`, b1/b2 = `--workers ' +
    '1/2`; f = `tunnelgate portal --relay` in front of `tunnelgate relay` (one process each, both with these ' +
    'settings; the portal reads each leg\'s head and then copies raw bytes both ways, the relay node unwraps the ' +
    'tunnel), its CPU that of both processes.')
  L.push('- **HAProxy**: Debian package, `mode tcp`, `balance source`, one server (the source), default threads. ' +
    '**Raw relay**: `bench/src/tcp-relay.ts`, Node `pipe()` with TCP_NODELAY.')
  L.push('- **live** (issue #9): its own method, run and baseline; see its section above (`bench/src/live.ts`). It ' +
    'is left out of the targets of issue #6.')
  L.push('- **Studying a box**: `TUNNELGATE_BENCH_BOX_NODE_FLAGS` adds node flags to the Node middle boxes\' ' +
    'processes (relay workers inherit them), e.g. `--trace-gc` or `--cpu-prof --cpu-prof-dir=DIR`; ' +
    '`TUNNELGATE_BENCH_DEBUG=1` shows their output on stderr. Neither is set for the report\'s runs.')
  if ((o.delayRepeats ?? 0) > 0) {
    L.push(`- **Repeated half-load windows**: the 50 % window is measured ${1 + (o.delayRepeats ?? 0)} times ` +
      `(${o.delaySeconds} s each), and the added p99 of the delay target is the median of ` +
      `the ${1 + (o.delayRepeats ?? 0)}: on 2 cores shared by the box, the source and the load generator, one ` +
      'window\'s p99 depends on how the scheduler interleaved them in those seconds and swings by several ms between ' +
      `otherwise equal runs. The first is in the scenario's delay phase; the other ${o.delayRepeats ?? 0} come in ` +
      'rounds after every scenario has run, each round going through the scenarios in turn and starting each box ' +
      `afresh (its direct probes and tunnels opened anew, ${o.warmSeconds * 2} s warm-up), so a noisy spell of the ` +
      'machine, which lasts seconds to minutes, lands on one window of several scenarios rather than on several ' +
      'windows of one. Every window\'s value is shown.')
  }
  if (o.delayProbes !== undefined && o.delayProbes > 0) {
    L.push('- **Added delay, same window**: through each scenario\'s delay phase the load generator also ' +
      `plays ${o.delayProbes} direct probe tunnels (load generator → source, no middle box; ${o.kbps} kbit/s each, ` +
      'on top of the fraction\'s load), opened first and kept for every fraction. A window\'s added delay is the p99 ' +
      'of the box\'s tunnels minus the p99 of those probes, both recorded in that window: the source, the load ' +
      'generator and the machine were the same for both, so what is left is what the box adds. On 2 shared cores the ' +
      'p99 of any window moves by several ms from one window to the next (a lone direct window is no steadier), so a ' +
      'box\'s p99 against direct\'s *own* window — kept in the tables as "over direct\'s own window" — flips sign ' +
      'between runs; the same-window figure carries the verdict. Direct (c) measured this way is the control: its ' +
      'tunnels and its probes take the same path, so its figure shows the method\'s noise. A window where the probes ' +
      'lost or were late is not counted.')
  }
  if (o.boxFirstNice !== undefined) {
    L.push('- **Box first**: every delay window is measured a second time with all the box\'s threads at ' +
      `nice ${o.boxFirstNice} (HAProxy's and the raw relay's too), restored to 0 afterwards. With the source, the ` +
      'load generator and the box all busy on 2 cores, a single-threaded box (tunnelgate all-in-one, b1\'s one ' +
      'worker, the raw relay) waits for a core whenever the other two hold both, and that wait is in its added p99; ' +
      `HAProxy runs one thread per core and waits less. At nice ${o.boxFirstNice} the kernel runs the box as soon as ` +
      'it is ready, as on a host of its own, and the same-window figure is what the box\'s own work adds. The ' +
      'verdict ' +
      'stays on the shared windows. Caveat: the source and load generator then wait instead, so the probes\' own p99 ' +
      'grows, and a stall of the box that falls on packets the harness delayed less than its p99 moves the box\'s ' +
      'p99 ' +
      'less than it would on a quiet machine.')
  }
  L.push('- **Direct** is the same client against the source terminating the tunnel itself: it is the baseline for ' +
    '"added" setup time (sequential: direct\'s own phase; simultaneous: the direct burst just before each burst ' +
    'through the box) and delay. The embedded origin does not terminate the tunnel, so it is not used for the ' +
    'baseline; GStreamer\'s RTSP server does, but cannot send stamped RTP at a chosen bitrate.')
  L.push('')
  return L.join('\n')
}

function liveRows (side: LiveSide): string[] {
  const gst = side.id === 'gst'
  const rows = [
    '| viewers | playing | delivered Mbit/s | kbit/s per viewer | lost | late | server CPU-s | server CPU-s/Gbit ' +
      `|${gst ? ' above baseline CPU-s/Gbit |' : ''} viewers per core ` +
      `|${gst ? ' above baseline viewers per core |' : ''} lag p50 / p99 / max ms | server RSS MB ` +
      `|${gst ? '' : ' gst (source) CPU-s |'} held |`,
    `|---|---|---|---|---|---|---|---|${gst ? '---|' : ''}---|${gst ? '---|' : ''}---|---|${gst ? '' : '---|'}---|`
  ]
  const row = (s: LiveStep, label: string): string =>
    `| ${label} | ${s.opened} | ${f(s.deliveredMbps, 1)} | ${f(s.perViewerKbps, 0)} | ${s.lost} | ${s.late} ` +
      `| ${f(s.cpuServer)} | ${f(s.cpuPerGbit, 3)} ` +
      `|${gst ? ` ${f(s.cpuPerGbitAboveBaseline, 3)} |` : ''} ${f(s.viewersPerCore, 0)} ` +
      `|${gst ? ` ${f(s.viewersPerCoreAboveBaseline, 0)} |` : ''} ${f(s.lagMs.p50, 1)} / ${f(s.lagMs.p99, 1)} ` +
      `/ ${f(s.lagMs.max, 1)} | ${f(s.serverRssMB, 0)} ` +
      `|${gst ? '' : ` ${f(s.cpuSource)} |`} ${s.held ? 'yes' : '**no**'} |`
  if (side.baseline !== null) rows.push(row(side.baseline, '1 (baseline)'))
  for (const s of side.steps) rows.push(row(s, String(s.viewers)))
  return rows
}

/** The live scenario's section, from its own run. */
export function renderLive (lv: LiveResult): string[] {
  const L: string[] = []
  const st = lv.stream
  const o = lv.options
  const tg = lv.sides.find(s => s.id === 'tunnelgate')
  const gst = lv.sides.find(s => s.id === 'gst')
  L.push('## live: viewers per core on one live stream (issue #9)', '')
  L.push(
    `> From the run of ${lv.date} (profile **${lv.profile}**, ${f(lv.durationSeconds / 60, 1)} ` +
      `min; ${lv.machine.nproc} CPUs, load average at its start ${lv.machine.loadavg}; ` +
      `GStreamer ${lv.machine.gstreamer ?? '–'}).` +
      `${lv.profile !== 'full' ? ` **A ${lv.profile} run: indicative only.**` : ''}`,
    ''
  )
  L.push(
    `One live stream — ${st.width}x${st.height}@${st.fps} H.264 from gst-rtsp-server (\`videotestsrc ` +
      `pattern=${st.pattern}\` → \`x264enc speed-preset=${st.preset} bitrate=${st.kbps}\`, keyframe every ${st.gop} ` +
      `frames), its shared mount \`/${st.mount}\` — served to N viewers by:`,
    ''
  )
  L.push('- **tunnelgate**: tunnelgate all-in-one (`--workers 0`) with `routes: [{ path: \'/\', live: true }]`, ' +
    'holding ONE RTSP/TCP session to gst-rtsp-server and answering every viewer itself (docs/live-fanout.md). Server ' +
    'CPU = tunnelgate\'s process only; gst-rtsp-server (encoder + one session) is its source, shown beside it.')
  L.push(
    '- **gst**: a fresh gst-rtsp-server serving the same shared media to the same viewers directly (it terminates ' +
      'the QuickTime tunnel itself). Its process also runs the encoder, so its steps are also shown **above ' +
      'baseline**: minus the CPU rate it used with 1 viewer (the encoder and one session).',
    ''
  )
  L.push(
    'The same client for both: `bench/src/load.ts` tunnels in live mode (GET + POST, DESCRIBE, SETUP of the video ' +
      `track, PLAY), viewers added step by step and kept open, a GET_PARAMETER keepalive round and ${o.warmSeconds} ` +
      `s warm-up before each ${o.liveSeconds} s window. **Lost** = RTP sequence gaps; **late** = viewers that fell ` +
      `more than ${o.liveLagMs} ms behind the stream's own clock during the window (arrival span of their packets ` +
      'minus the RTP timestamp span) or got no video; **held** = no lost, late or failed viewer (a step that fails ' +
      'is measured once more). **Viewers per core** = viewers / (server CPU-s per second): what one fully busy core ' +
      'would serve at that step\'s cost per viewer (for gst above its baseline).',
    ''
  )
  L.push(
    '| side | highest step held (viewers) | viewers per core there | KiB RSS per added viewer | server CPU-s/Gbit ' +
      'per step (gst: above baseline) |',
    '|---|---|---|---|---|'
  )
  for (const s of [tg, gst]) {
    if (s === undefined) continue
    const per = s.steps.map(
      x => `${x.viewers}: ${f(s.id === 'gst' ? x.cpuPerGbitAboveBaseline : x.cpuPerGbit, 3)}`
    ).join(', ')
    L.push(`| ${s.id}${s.error !== undefined ? ` (failed: ${s.error})` : ''} | ${s.heldViewers} ` +
      `| ${f(s.viewersPerCore, 0)} | ${f(s.kibPerViewer, 1)} | ${per === '' ? '–' : per} |`)
  }
  const top = o.liveSteps[o.liveSteps.length - 1]
  const allHeld = [tg, gst].filter(
    (s): s is LiveSide => s !== undefined && s.error === undefined && top !== undefined && s.heldViewers === top
  ).map(s => s.id)
  if (allHeld.length > 0) {
    L.push(
      '',
      `${allHeld.join(' and ')} held every step, up to the largest (${top} ` +
        `viewers): ${allHeld.length > 1 ? 'their limits lie' : 'its limit lies'} above it on this machine, where the ` +
        'load generator shares the two cores.'
    )
  }
  if (tg !== undefined && gst !== undefined) {
    const pairs = tg.steps.flatMap(a => {
      const b = gst.steps.find(x => x.viewers === a.viewers)
      return b !== undefined && a.cpuPerGbit !== null && a.cpuPerGbit > 0 && b.cpuPerGbitAboveBaseline !== null &&
        b.cpuPerGbitAboveBaseline > 0
        ? [`${a.viewers} viewers: ${f(a.cpuPerGbit / b.cpuPerGbitAboveBaseline)}×`]
        : []
    })
    L.push(
      '',
      'CPU per delivered Gbit, tunnelgate ÷ gst-rtsp-server above its baseline, same viewers, same ' +
        `run: ${pairs.length > 0 ? pairs.join(', ') : 'no common step measured'}.`
    )
  }
  L.push('')
  for (const s of [tg, gst]) {
    if (s === undefined) continue
    L.push(`### live/${s.id}: ${s.name}`, '')
    if (s.error !== undefined) L.push(`**Failed:** ${s.error}`, '')
    if (s.baseline !== null || s.steps.length > 0) L.push(...liveRows(s), '')
  }
  return L
}

interface Series { name: string, color: string, points: Array<[number, number]> }

function panel (
  x0: number, y0: number, w: number, h: number, title: string, xLabel: string, yLabel: string, series: Series[]
): string {
  const pts = series.flatMap(s => s.points)
  const out: string[] = []
  const padL = 56; const padB = 40; const padT = 28; const padR = 12
  const pw = w - padL - padR; const ph = h - padT - padB
  out.push(`<text x="${x0 + w / 2}" y="${y0 + 18}" text-anchor="middle" font-size="14" ` +
    `font-weight="bold">${esc(title)}</text>`)
  out.push(`<rect x="${x0 + padL}" y="${y0 + padT}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`)
  if (pts.length === 0) {
    out.push(`<text x="${x0 + w / 2}" y="${y0 + h / 2}" text-anchor="middle" font-size="12">no data</text>`)
    return out.join('\n')
  }
  const xmax = niceMax(Math.max(...pts.map(p => p[0])))
  const low = Math.min(0, ...pts.map(p => p[1]))
  const ymin = low < 0 ? -niceMax(-low) : 0
  const ymax = niceMax(Math.max(...pts.map(p => p[1]), 1e-9))
  const X = (v: number): number => x0 + padL + (v / xmax) * pw
  const Y = (v: number): number => y0 + padT + ph - ((v - ymin) / (ymax - ymin)) * ph
  for (let i = 0; i <= 5; i++) {
    const xv = (xmax * i) / 5; const yv = ymin + ((ymax - ymin) * i) / 5
    out.push(`<line x1="${X(xv)}" y1="${y0 + padT}" x2="${X(xv)}" y2="${y0 + padT + ph}" stroke="#eee"/><text ` +
      `x="${X(xv)}" y="${y0 + padT + ph + 14}" text-anchor="middle" font-size="10">${tick(xv)}</text>`)
    out.push(`<line x1="${x0 + padL}" y1="${Y(yv)}" x2="${x0 + padL + pw}" y2="${Y(yv)}" stroke="#eee"/><text ` +
      `x="${x0 + padL - 4}" y="${Y(yv) + 3}" text-anchor="end" font-size="10">${tick(yv)}</text>`)
  }
  out.push(`<text x="${x0 + padL + pw / 2}" y="${y0 + h - 6}" text-anchor="middle" ` +
    `font-size="11">${esc(xLabel)}</text>`)
  out.push(`<text x="${x0 + 14}" y="${y0 + padT + ph / 2}" text-anchor="middle" font-size="11" ` +
    `transform="rotate(-90 ${x0 + 14} ${y0 + padT + ph / 2})">${esc(yLabel)}</text>`)
  series.forEach((s, i) => {
    if (s.points.length === 0) return
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`)
    for (const p of s.points) {
      out.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`)
    }
    out.push(`<rect x="${x0 + padL + 8}" y="${y0 + padT + 6 + i * 14}" width="10" height="10" ` +
      `fill="${s.color}"/><text x="${x0 + padL + 22}" y="${y0 + padT + 15 + i * 14}" ` +
      `font-size="10">${esc(s.name)}</text>`)
  })
  return out.join('\n')
}

function niceMax (v: number): number {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * p) return m * p
  return 10 * p
}

function tick (v: number): string {
  return Math.abs(v) >= 100
    ? v.toFixed(0)
    : Math.abs(v) >= 1 ? String(Number(v.toFixed(1))) : String(Number(v.toFixed(3)))
}
function esc (s: string): string { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;') }

export function renderSvg (r: BenchResults): string {
  const boxes = r.scenarios.filter(s => s.id !== 'c')
  const c = r.scenarios.find(s => s.id === 'c')
  const cpu: Series[] = boxes.map(
    s => ({
      name: `${s.id}: ${s.name}`,
      color: COLORS[s.id] ?? '#000',
      points: s.sweep.filter(x => x.cpuPerGbit !== null && x.deliveredMbps > 0).map(
        x => [x.deliveredMbps, x.cpuPerGbit!] as [number, number]
      )
    })
  )
  // Added delay: the delay phase's windows against their own direct probes when the run had them
  // (steadier), else the sweep's windows against direct's sweep window at the same load.
  const probed = boxes.some(s => s.delay.some(x => inWindow(x) !== null))
  const delay: Series[] = boxes.map(s => ({
    name: `${s.id}: ${s.name}`,
    color: COLORS[s.id] ?? '#000',
    points: probed
      ? s.delay.flatMap(x => {
        const add = inWindow(x)
        return add === null ? [] : [[x.offeredMbps, add] as [number, number]]
      })
      : s.sweep.flatMap(x => {
        const d = c?.sweep.find(y => y.tunnels === x.tunnels)
        return d !== undefined && d.delayMs.n > 0 && x.delayMs.n > 0
          ? [[x.offeredMbps, x.delayMs.p99 - d.delayMs.p99] as [number, number]]
          : []
      })
  }))
  const W = 1000; const H = 380
  const lv = r.live
  const liveH = lv === undefined ? 0 : H + 24
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 24 + liveH}" viewBox="0 ` +
      `0 ${W} ${H + 24 + liveH}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H + 24 + liveH}" fill="#fff"/>`,
    panel(0, 0, W / 2, H, 'Middle-box CPU per delivered Gbit', 'delivered Mbit/s', 'CPU-s per Gbit', cpu),
    panel(
      W / 2, 0, W / 2, H,
      probed ? 'Added p99 one-way delay over direct probes, same window' : 'Added p99 one-way delay over direct',
      'offered Mbit/s', 'ms', delay
    ),
    `<text x="8" y="${H + 16}" font-size="10" fill="#555">tunnelgate bench ` +
      `(${r.profile}), ${esc(r.date)}, ${r.machine.nproc} × ${esc(r.machine.cpu)}, Node ${r.machine.node}, ` +
      `HAProxy ${esc(r.machine.haproxy ?? '–')}</text>`
  ]
  if (lv !== undefined) {
    const y0 = H + 24
    const color = (id: string): string => id === 'tunnelgate' ? COLORS.a! : COLORS.c!
    const perGbit: Series[] = lv.sides.map(s => ({
      name: s.id === 'gst'
        ? 'gst-rtsp-server (above its 1-viewer baseline)'
        : 'tunnelgate live fan-out',
      color: color(s.id),
      points: s.steps.flatMap(x => {
        const v = s.id === 'gst' ? x.cpuPerGbitAboveBaseline : x.cpuPerGbit
        return v !== null && Number.isFinite(v) ? [[x.viewers, v] as [number, number]] : []
      })
    }))
    const rss: Series[] = lv.sides.map(
      s => ({
        name: s.id === 'gst' ? 'gst-rtsp-server' : 'tunnelgate',
        color: color(s.id),
        points: [
          ...(s.baseline === null ? [] : [s.baseline]), ...s.steps
        ].map(x => [x.opened, x.serverRssMB] as [number, number])
      })
    )
    out.push(
      panel(
        0, y0, W / 2, H, 'Live: serving-process CPU per delivered Gbit', 'viewers of one live stream', 'CPU-s per Gbit',
        perGbit
      )
    )
    out.push(panel(W / 2, y0, W / 2, H, 'Live: serving-process RSS', 'viewers of one live stream', 'MB', rss))
    out.push(`<text x="8" y="${y0 + H + 16}" font-size="10" fill="#555">live scenario: tunnelgate bench ` +
      `(${lv.profile}), ${esc(lv.date)}, ${lv.stream.width}x${lv.stream.height}@${lv.stream.fps} ` +
      `H.264 ${lv.stream.kbps} kbit/s, GStreamer ${esc(lv.machine.gstreamer ?? '–')}</text>`)
  }
  out.push('</svg>', '')
  return out.join('\n')
}
