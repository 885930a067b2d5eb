/**
 * The bench's accounting, on small hand-made results (test data, not figures): how many paused
 * tunnels each scenario can hold under the open-files limits (run.ts scaleCap), the
 * worker-scaling analysis that charges the source and the load generator to the same machine
 * (report.ts workerScaling), which scenario carries the 10,000-tunnel verdict, and disturbed
 * windows (other processes on the machine) making a verdict inconclusive, and the added-delay
 * verdict taken against the direct probes of the same window; the setup verdict, the CPU per
 * setup shown beside it, and whether HAProxy's own bursts put the target out of this machine's reach.
 */
import t from 'tap'
import { scaleCap } from '../../bench/src/run.js'
import { parseBenchArgs } from '../../bench/src/args.js'
import { SMOKE } from '../../bench/src/options.js'
import type { BenchResults, ScaleResult, ScenarioResult, SetupSummary } from '../../bench/src/results.js'
import { benchStep } from '../helpers/bench-results.js'
import { cpuIdle, cpuOther, inWindow, isDisturbed, type StepResult } from '../../bench/src/window.js'
import {
  added50, burstAdded, heldEveryStep, renderMarkdown, setupReach, verdicts, workerScaling
} from '../../bench/src/report.js'

const machine: BenchResults['machine'] = {
  nproc: 2,
  cpu: 'test cpu',
  kernel: 'k',
  node: 'v20',
  ffmpeg: null,
  haproxy: null,
  gstreamer: null,
  loadavg: '0 0 0'
}
const { outDir: _o, log: _l, ...options } = { ...SMOKE, outDir: '', log: () => {} }

const step = benchStep

function scale (o: Partial<ScaleResult>): ScaleResult {
  return {
    requested: 10000,
    limit: 10000,
    capReason: null,
    nofile: 20000,
    opened: 10000,
    keepaliveAnswered: 10000,
    rssBeforeMB: 100,
    rssAfterMB: 250,
    bytesPerTunnel: 15 * 1024,
    heapBeforeMB: 20,
    heapAfterMB: 90,
    heapBytesPerTunnel: 7 * 1024,
    gc: true,
    openSeconds: 10,
    openErrors: {},
    ...o
  }
}

function sc (id: ScenarioResult['id'], sweep: StepResult[], extra: Partial<ScenarioResult> = {}): ScenarioResult {
  const held = sweep.filter((x, i) => x.held && sweep.slice(0, i).every(y => y.held)).at(-1)
  return {
    id,
    name: `scenario ${id}`,
    sweep,
    heldTunnels: held?.tunnels ?? 0,
    heldMbps: held?.deliveredMbps ?? 0,
    delay: [],
    ...extra
  }
}

function results (scenarios: ScenarioResult[]): BenchResults {
  return {
    date: '2026-01-01T10:00:00.000Z',
    profile: 'full',
    machine,
    options: { ...options, scaleTunnels: 10000 },
    durationSeconds: 600,
    micro: [],
    scenarios,
    referenceTunnels: 200
  }
}

t.test('scaleCap: a single middle-box process holds 2 descriptors per paused tunnel; b2 spreads them over 2 ' +
  'workers', async t => {
  const a = scaleCap('a', 10000, 20000, 20000, 16)
  t.equal(a.n, 9800, 'a is capped near half the hard limit')
  t.match(a.reason, /open-files hard limit 20000: one middle-box process holds 2 descriptors/)
  for (const id of ['b1', 'd', 'e'] as const) t.equal(scaleCap(id, 10000, 20000, 20000, 16).n, 9800, `${id}: one relay process, capped too`)
  t.same(scaleCap('b2', 10000, 20000, 20000, 16), { n: 10000, reason: null }, 'b2 holds 10,000')
  t.same(scaleCap('a', 10000, 131072, 131072, 16), { n: 10000, reason: null }, 'a higher limit lifts the cap')
  const load = scaleCap('b2', 10000, 131072, 8000, 16)
  t.equal(load.n, 8000 - 400 - 32, 'the load generator\'s own limit caps it when it is the lowest')
  t.match(load.reason, /load generator/)
  t.equal(scaleCap('c', 10000, 20000, 20000, 16).n, 10000,
    'direct: only the source (1 per tunnel) and the load generator count')
})

t.test('cpuOther / cpuIdle / isDisturbed', async t => {
  const s = step(100, { cpuBox: 1, cpuSource: 0.5, cpuClient: 0.5, cpuMachine: 3, cpuSteal: 0.2 })
  t.equal(cpuOther(s), 1, 'busy time not used by box, source or load generator')
  t.equal(cpuIdle(s), 4 - 3 - 0.2, 'cores × seconds minus busy and stolen')
  t.ok(isDisturbed(s, 0.15), '1 of 4 CPU-s is more than 15 %')
  t.notOk(isDisturbed(s, 0.3), 'but not more than 30 %')
  t.equal(parseBenchArgs(['--phases', '1'], '/tmp/x').phases, 1, '--phases parses')
  t.equal(parseBenchArgs([], '/tmp/x').phases, 10, 'the full run de-phases sessions by default')
  t.equal(parseBenchArgs([], '/tmp/x').setupBursts, 5,
    'the full run pairs 5 bursts of simultaneous setups with direct ones')
  t.equal(parseBenchArgs(['--setup-bursts', '3'], '/tmp/x').setupBursts, 3, '--setup-bursts parses')
  t.equal(parseBenchArgs(['--setup-bursts', '0'], '/tmp/x').setupBursts, 1, 'at least one burst')
})

// b1 holds 400 tunnels (800 Mbit/s), b2 holds 500 (1000 Mbit/s); at b2's held step the box used
// 0.9 and the source + load generator 1.0 CPU-s per delivered Gbit.
const gbit = (tunnels: number, seconds = 2): number => tunnels * 2 * seconds / 1000
const b1 = sc('b1', [
  step(400, { cpuBox: 1.2, cpuProcs: [0.02, 1.18], cpuSource: 0.7, cpuClient: 0.9, cpuMachine: 3.0 }),
  step(500, {
    held: false,
    late: 100,
    cpuBox: 1.9,
    cpuProcs: [0.02, 1.88],
    cpuSource: 0.9,
    cpuClient: 1.0,
    cpuMachine: 3.9
  })
])
const b2 = sc('b2', [
  step(500, {
    cpuBox: 0.9 * gbit(500),
    cpuProcs: [0.02, 0.88, 0.9],
    cpuSource: 0.5 * gbit(500),
    cpuClient: 0.5 * gbit(500),
    cpuMachine: 3.9
  }),
  step(650, {
    held: false,
    late: 10,
    cpuBox: 1.3,
    cpuProcs: [0.02, 0.64, 0.64],
    cpuSource: 1.2,
    cpuClient: 1.3,
    cpuMachine: 3.95
  })
], { scale: scale({}) })

t.test('workerScaling charges the source and load generator to the same machine', async t => {
  const ws = workerScaling(results([b1, b2]))!
  t.ok(ws !== null)
  t.equal(ws.ratio, 1000 / 800)
  t.ok(Math.abs(ws.boxPerGbit - 0.9) < 1e-9 && Math.abs(ws.harnessPerGbit - 1.0) < 1e-9,
    'costs per Gbit at b2\'s held step')
  t.ok(Math.abs(ws.coresFor17 - 1.7 * 0.8 * 1.9) < 1e-9, '1.7 × b1\'s Gbit/s × (box + harness) CPU-s per Gbit')
  t.ok(Math.abs(ws.machineCeilingMbps - 2 / 1.9 * 1000) < 1e-6, 'what 2 cores carry at those costs')
  t.ok(Math.abs(ws.b1WorkerCoresAtLimit! - 1.88 / 2) < 1e-9,
    'b1\'s worker CPU at its first failing step (portal left out)')
  const v = verdicts(results([b1, b2])).find(x => x.target.startsWith('Throughput scales'))!
  t.equal(v.met, false)
  t.match(v.measured, /out of reach on this machine: carrying 1\.7 × 800 Mbit\/s through b2 costs 2\.58 cores/)
  const md = renderMarkdown(results([b1, b2]))
  t.match(md, /## Worker scaling: where the CPU went/)
  t.match(md, /\| b1 \| first not held \| 500 \| 1000 \| 0 \/ 100 \| 0\.95 \(0\.01 \+ 0\.94\) \|/,
    'per-process cores at b1\'s limit')
  t.match(md, /b1's one relay worker used 0\.94 cores at its first step not held: it was saturated/)
})

t.test('a disturbed window that ended a sweep makes the worker-scaling verdict inconclusive', async t => {
  const noisy = sc('b1', [b1.sweep[0]!, { ...b1.sweep[1]!, disturbed: true }])
  const v = verdicts(results([noisy, b2])).find(x => x.target.startsWith('Throughput scales'))!
  t.equal(v.met, null)
  t.match(v.measured, /inconclusive: the window that ended b1's sweep was disturbed/)
  t.match(renderMarkdown(results([noisy, b2])), /\| 400 \/ 800 \(sweep ended by a disturbed window\) \|/)
})

t.test('the 10,000-paused-tunnel verdict is carried by b2; a\'s capped figures are shown beside it', async t => {
  const a = sc('a', [step(100)], {
    scale: scale({
      limit: 9800,
      opened: 9800,
      keepaliveAnswered: 9800,
      capReason: 'open-files hard limit 20000: one middle-box process holds 2 descriptors per paused tunnel (GET + ' +
        'upstream)',
      bytesPerTunnel: 13 * 1024
    })
  })
  const v = verdicts(results([a, b1, b2])).find(x => x.target.startsWith('Memory'))!
  t.equal(v.met, true, 'b2 held 10,000 at 15 KiB')
  t.match(v.measured,
    /^verdict on b2 .*15\.0 KiB RSS per tunnel \(7\.0 KiB V8 heap \+ external\) after a forced GC; 10000 of 10000 held/)
  t.match(v.measured, /a \(one process\): 9800 of 9800 held \(capped: open-files hard limit 20000/)
  const fat = sc('b2', b2.sweep, { scale: scale({ bytesPerTunnel: 40 * 1024 }) })
  t.equal(verdicts(results([a, fat])).find(x => x.target.startsWith('Memory'))!.met, false, 'over 32 KiB: not met')
  const md = renderMarkdown(results([a, b2]))
  t.match(md, /Scale: 9800 paused tunnels held \(of 10000 requested: capped at 9800 by the open-files hard limit 20000/)
  t.match(md,
    /V8 heap used \+ external 20\.0 → 90\.0 MB = \*\*7\.0 KiB per tunnel\*\*, both read after two forced full GCs/)
})

t.test('added delay: against the direct probes of the same window, not direct\'s own window', async t => {
  const at50 = (p99: number, o: Partial<StepResult> = {}): StepResult & { fraction: number } =>
    ({ ...step(100, { delayMs: { n: 1000, p50: 0.5, p99, p999: p99 + 1 }, ...o }), fraction: 0.5 })
  const delayVerdict = (a: StepResult & { fraction: number },
    c: StepResult & { fraction: number }): ReturnType<typeof verdicts>[number] =>
    verdicts(results([sc('a', [step(200)], { delay: [a] }), sc('c', [step(200)], { delay: [c] })])).find(v =>
      v.target.startsWith('Added per-packet delay'))!
  const probes = (p99: number, late = 0): Partial<StepResult> =>
    ({ probeDelayMs: { n: 500, p50: 0.4, p99, p999: p99 + 1 }, probeLate: late })
  t.equal(inWindow(at50(4, probes(3.5))), 0.5, 'p99 of the box\'s tunnels minus p99 of the probes')
  t.equal(inWindow(at50(4)), null, 'no probes, no same-window figure')
  // Direct's own window was noisier (p99 9 ms): against it a would look met; the same window says not.
  const v = delayVerdict(at50(6, probes(2)), at50(9, probes(8.8)))
  t.equal(v.met, false, '+4 ms over the probes of its window: not met')
  t.match(v.measured, /against direct probes in the same window: \+4\.000 ms/)
  t.match(v.measured, /c \+0\.200/, 'direct measured the same way is listed (the method\'s noise)')
  t.match(v.measured, /against direct's own window instead: −3\.000 ms/)
  t.equal(delayVerdict(at50(2.5, probes(2)), at50(2, probes(2))).met, true, '+0.5 ms: met')
  t.equal(delayVerdict(at50(2.5, probes(2, 3)), at50(2, probes(2))).met, null, 'late probe packets: inconclusive')
  t.equal(delayVerdict(at50(2.5, { ...probes(2), disturbed: true }), at50(2, probes(2))).met, null,
    'disturbed window: inconclusive')
  t.equal(delayVerdict(at50(6), at50(9)).met, true,
    'results without probes keep the old comparison (a −3 ms "met", which the probes above refute)')
  const md = renderMarkdown(results([sc('a', [step(200)], { delay: [at50(6, probes(2))] }),
    sc('c', [step(200)], { delay: [at50(9, probes(8.8))] })]))
  t.match(md, /direct probes in the window: p99 ms \(lost \+ late\) \| added p99 over them ms/,
    'the delay tables show the probes\' column')
})

t.test('a scenario that held every sweep step is flagged: its limit, and a ratio built on it, lie above the ' +
  'sweep', async t => {
  const topped = sc('b1', [step(100), step(200)])
  const limited = sc('b2', [step(100), step(200, { held: false, late: 3 })])
  t.ok(heldEveryStep(topped), 'every step held')
  t.notOk(heldEveryStep(limited), 'a step not held')
  t.notOk(heldEveryStep(sc('a', [])), 'no sweep: nothing to say')
  const md = renderMarkdown(results([sc('a', [step(100)]), topped, limited]))
  t.match(md, /\| b1: scenario b1 \| 200 \/ 400 \(every sweep step held: the limit is higher\) \|/,
    'the summary says so for b1')
  t.notMatch(md, /\| b2: scenario b2 \| 100 \/ 200 \(every sweep step held/, 'and not for b2')
  t.match(md, /\(b1 held every sweep step: its limit is higher, so the ratio is a bound, not a measurement\)/,
    'the worker-scaling ratio is called a bound')
})

t.test('added delay over repeated half-load windows: the verdict is their median, every window shown', async t => {
  const probes = (p99: number, late = 0): Partial<StepResult> =>
    ({ probeDelayMs: { n: 500, p50: 0.4, p99, p999: p99 + 1 }, probeLate: late })
  const at50 = (p99: number, o: Partial<StepResult> = {}): StepResult & { fraction: number } =>
    ({ ...step(100, { delayMs: { n: 1000, p50: 0.5, p99, p999: p99 + 1 }, ...probes(1), ...o }), fraction: 0.5 })
  const a = sc('a', [step(200)], { delay: [at50(4.8)], delayRepeats: [at50(1.5), at50(1.9)] })
  const add = added50(a)!
  t.same(add.values.map(v => Math.round(v * 10) / 10), [3.8, 0.5, 0.9], 'every window, in the order measured')
  t.equal(Math.round(add.median * 10) / 10, 0.9, 'the median, not the first window')
  t.equal(added50(sc('b2', [step(200)], { delay: [at50(2)], delayRepeats: [at50(3)] }))!.median, 1.5,
    'an even count: the mean of the middle two')
  t.equal(added50(sc('x' as 'a', [], { delay: [at50(2, { probeDelayMs: undefined })] })), null,
    'no probes: nothing to take')
  const v = verdicts(results([a, sc('c', [step(200)], { delay: [at50(1)] })])).find(x =>
    x.target.startsWith('Added per-packet delay'))!
  t.equal(v.met, true, 'median +0.9 ms: met, though the first window alone (+3.8) was not')
  t.match(v.measured, /the median of its 3 windows at 50 %.*\+0\.900 \(\+3\.800, \+0\.500, \+0\.900\) ms/)
  const late = sc('a', [step(200)], { delay: [at50(1.2)], delayRepeats: [at50(1.2, { late: 4 }), at50(1.2)] })
  t.equal(verdicts(results([late])).find(x => x.target.startsWith('Added per-packet delay'))!.met, null,
    'late packets in any of the windows: inconclusive')
  const md = renderMarkdown(results([a, sc('c', [step(200)], { delay: [at50(1)] })]))
  t.match(md, /The 50 % window measured again/, 'the repeated windows get a table')
  t.match(md, /\| \+0\.900 \(\+3\.800, \+0\.500, \+0\.900\) \|/, 'the summary shows the median and each window')
})

t.test('setup without paired bursts (older results): the one burst against direct\'s own; each box\'s CPU per setup ' +
  'beside', async t => {
  const part = (p50: number, p99: number, boxUs: number): SetupSummary =>
    ({ n: 200, failed: 0, p50, p99, max: p99 + 1, cpu: { boxUs, sourceUs: 120, clientUs: 240 } })
  const a = sc('a', [step(100)], { setup: { sequential: part(1.2, 5, 510.4), parallel: part(60, 80, 420.6) } })
  const c = sc('c', [step(100)], { setup: { sequential: part(0.3, 1, 0), parallel: part(25, 30, 0) } })
  const d = sc('d', [step(100)], { setup: { sequential: part(0.5, 3, 160), parallel: part(24, 29, 170.2) } })
  const v = verdicts(results([a, c, d])).find(x => x.target.startsWith('Added setup'))!
  t.equal(v.met, false, '+35 ms in the burst: not met')
  t.match(v.measured,
    /^sequential \+0\.90 \/ \+4\.00 ms; 200 simultaneous, \+35\.00 \/ \+50\.00 ms \(verdict on both; direct's own 200 take 25\.00 \/ 30\.00 ms\); the other boxes' simultaneous setups \(not the verdict\): d −1\.00 \/ −1\.00 ms; the box's CPU per simultaneous setup: a 421, d 170 µs$/)
  const md = renderMarkdown(results([a, c, d]))
  t.match(md, /\| sequential \| 200 \| 0 \| 1\.20 \| 5\.00 \| 6\.00 \| 510 \| 120 \| 240 \|/,
    'a: the box\'s, the source\'s and the load generator\'s CPU per setup')
  t.match(md, /\| simultaneous \| 200 \| 0 \| 25\.00 \| 30\.00 \| 31\.00 \| – \| 120 \| 240 \|/, 'c: no box')
  const old = sc('a', [step(100)], {
    setup: {
      sequential: { n: 10, failed: 0, p50: 1, p99: 2, max: 3 },
      parallel: { n: 10, failed: 0, p50: 1, p99: 2, max: 3 }
    }
  })
  t.match(renderMarkdown(results([old, c])),
    /\| sequential \| 10 \| 0 \| 1\.00 \| 2\.00 \| 3\.00 \| – \| – \| – \|/,
    'results from before the CPU was read render with dashes')
})

t.test('setup in paired bursts: each burst against the direct burst just before it, the verdict on the ' +
  'medians', async t => {
  const part = (p50: number, p99: number, boxUs = 0): SetupSummary =>
    ({ n: 200, failed: 0, p50, p99, max: p99 + 1, cpu: { boxUs, sourceUs: 100, clientUs: 200 } })
  // a: +30/+40, +1/+8, +3/+9 → medians +3 / +9; the direct bursts swing between 20 and 60 ms.
  const a = sc('a', [step(100)], {
    setup: {
      sequential: part(1, 5, 500),
      parallel: part(50, 70, 400),
      bursts: [{ direct: part(20, 30), box: part(50, 70, 400) }, { direct: part(60, 62), box: part(61, 70, 300) }, {
        direct: part(30, 31),
        box: part(33, 40, 500)
      }]
    }
  })
  const c = sc('c', [step(100)], {
    setup: {
      sequential: part(0.5, 1),
      parallel: part(25, 30),
      bursts: [{ direct: part(25, 30), box: part(26, 30) }, { direct: part(40, 45), box: part(39, 44) }]
    }
  })
  const b = burstAdded(a, c)!
  t.same(b.pairs, [{ p50: 30, p99: 40 }, { p50: 1, p99: 8 }, { p50: 3, p99: 9 }],
    'each burst minus the direct burst before it')
  t.same([b.p50, b.p99, b.directP50, b.directP99, b.paired], [3, 9, 30, 31, true],
    'the medians; direct\'s own phase (c) is not used')
  const v = verdicts(results([a, c])).find(x => x.target.startsWith('Added setup'))!
  t.equal(v.met, false, 'sequential p99 +4, burst medians +3 / +9: p50 over 2 ms, not met')
  t.match(v.measured,
    /200 simultaneous, median of 3 bursts, each against a direct burst just before it: \+3\.00 \/ \+9\.00 \(\+30\.00 \/ \+40\.00, \+1\.00 \/ \+8\.00, \+3\.00 \/ \+9\.00\) ms \(verdict on both; the direct bursts' median 30\.00 \/ 31\.00 ms\)/)
  t.match(v.measured,
    /not the verdict; c against c is the method's noise\): c \+0\.00 \/ −0\.50 ms; the box's CPU per simultaneous setup: a 400 µs$/)
  const fast = sc('a', [step(100)], {
    setup: { sequential: part(1, 5), parallel: part(21, 31), bursts: [{ direct: part(20, 30), box: part(21, 31) }] }
  })
  t.equal(verdicts(results([fast, c])).find(x => x.target.startsWith('Added setup'))!.met, true,
    '+0.5 / +4 sequential and +1 / +1 in the burst: met')
  const md = renderMarkdown(results([a, c]))
  t.match(md,
    /\| direct burst 2 \| 200 \| 0 \| 60\.00 \| 62\.00 \| 63\.00 \| – \| 100 \| 200 \|\n\| simultaneous 2, added \+1\.00 \/ \+8\.00 \| 200 \| 0 \| 61\.00 \| 70\.00 \| 71\.00 \| 300 \| 100 \| 200 \|/,
    'a burst row follows its direct burst, with what it added')
  t.match(md,
    /\| simultaneous 1 \(direct again\), added \+1\.00 \/ \+0\.00 \| 200 \| 0 \| 26\.00 \| 30\.00 \| 31\.00 \| – \|/,
    'c: the control, no box')
})

t.test('setupReach: out of reach only when HAProxy misses too, every box costlier per setup adds more than it, and ' +
  'tunnelgate is one of them', async t => {
  const part = (p50: number, p99: number, boxUs = 0): SetupSummary =>
    ({ n: 200, failed: 0, p50, p99, max: p99 + 1, cpu: { boxUs, sourceUs: 100, clientUs: 200 } })
  // A box adding `add` ms to each of 3 bursts (direct 20 / 25 ms), spending `us` per setup.
  const box = (id: ScenarioResult['id'], add: number, us: number): ScenarioResult =>
    sc(id, [step(100)], {
      setup: {
        sequential: part(1, 5, us),
        parallel: part(20 + add, 25 + add, us),
        bursts: [0, 1, 2].map(() => ({ direct: part(20, 25), box: part(20 + add, 25 + add, us) }))
      }
    })
  const c = box('c', 0, 0)
  const setupOf = (r: BenchResults): string => verdicts(r).find(x => x.target.startsWith('Added setup'))!.measured
  const slow = results([box('a', 35, 520), box('d', 12, 120), box('e', 16, 180), c])
  const x = setupReach(slow)!
  t.same([x.p50, x.p99, x.p50Over, x.pairs, x.costlierAddMore, x.outOfReach], [12, 12, 3, 3, true, true],
    'HAProxy +12 in 3 of 3 pairs; a spends more')
  t.same(x.boxes.map(b => b.id), ['d', 'e', 'a'], 'the boxes in the order of their CPU per setup')
  t.match(setupOf(slow),
    /; HAProxy \(d\), the thinnest forwarder, misses it here too \(\+12\.00 \/ \+12\.00 ms, its p50 over 2 ms in 3 of 3 pairs\); every box that spent more CPU per setup than HAProxy added more \(d 120 µs \+12\.00, e 180 µs \+16\.00, a 520 µs \+35\.00 ms\), and tunnelgate \(a\) spends more per setup than HAProxy: \*\*out of reach on this machine\*\*$/)
  t.notMatch(setupOf(slow), /the box's CPU per simultaneous setup/,
    'the CPU per setup is said once, beside what each box added')
  const swapped = results([box('a', 35, 520), box('d', 12, 120), box('b1', 100, 870), box('f', 90, 1200), c])
  t.equal(setupReach(swapped)!.outOfReach, true,
    'boxes costlier than HAProxy need not rank among themselves (b1 and f swap)')
  const beaten = results([box('a', 35, 520), box('d', 12, 120), box('e', 5, 180), c])
  t.same([setupReach(beaten)!.costlierAddMore, setupReach(beaten)!.outOfReach], [false, false],
    'e added less than HAProxy while spending more: no claim')
  t.match(setupOf(beaten),
    /misses it here too .*; the boxes' added p50 by their CPU per setup: d 120 µs \+12\.00, e 180 µs \+5\.00, a 520 µs \+35\.00 ms$/)
  const cheap = results([box('a', 35, 100), box('d', 12, 120), box('e', 16, 180), c])
  t.equal(setupReach(cheap)!.outOfReach, false, 'a box cheaper per setup than HAProxy could still make it')
  const fastD = results([box('a', 35, 520), box('d', 1, 120), box('e', 16, 180), c])
  t.equal(setupReach(fastD)!.outOfReach, false, 'HAProxy met it: within reach')
  t.match(setupOf(fastD), /the box's CPU per simultaneous setup: a 520, d 120, e 180 µs$/, 'no reach clause then')
  t.equal(setupReach(results([box('a', 35, 520), c])), null, 'no HAProxy: nothing to say')
})
