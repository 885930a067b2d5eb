/**
 * Capped worker scaling (bench/src/capped-scaling.ts, cpu-cap.ts, report-capped.ts):
 * - the held-load search (nextCount) finds any monotone limit to its precision in few windows
 *   (property-tested against a simulated box);
 * - the verdict takes the capped ratio only when it measures the workers (each layout found its
 *   limit with every worker at its quota and cores to spare), else keeps the uncapped one; the
 *   results are small hand-made objects (test data, not figures);
 * - a real cgroup CPU cap holds a busy process to its quota and is removed on release (root), or
 *   says why it cannot (not root).
 */
import t from 'tap'
import fc from 'fast-check'
import { benchStep } from '../helpers/bench-results.js'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpuSeconds } from '../../bench/src/procstat.js'
import { capCpu, cpuHierarchy, quotaUs, removeEmptyCaps } from '../../bench/src/cpu-cap.js'
import {
  nextCount, passOrder, type CappedLayout, type CappedScalingResult, type CappedStep
} from '../../bench/src/capped-scaling.js'
import { cappedFinding, renderCappedScaling, scalingVerdict } from '../../bench/src/report-capped.js'
import type { Verdict } from '../../bench/src/verdict.js'

const search = { growth: 1.25, precision: 0.04, maxTunnels: 1500 }

t.test('nextCount: grows until a step is not held, then bisects to the precision', async t => {
  t.equal(nextCount(40, null, search), 50, '40 held: ×1.25')
  t.equal(nextCount(1, null, search), 2, 'always at least one more')
  t.equal(nextCount(1400, null, search), 1500, 'no more than maxTunnels')
  t.equal(nextCount(1500, null, search), null, 'maxTunnels held: done (the limit was not reached)')
  t.equal(nextCount(100, 125, search), 112, 'between held and not held: the middle')
  t.equal(nextCount(100, 104, search), null, 'within 4 %: done')
  t.equal(nextCount(0, 40, search), 20, 'the first step not held: bisect down from it')
  t.equal(nextCount(0, 1, search), null, 'not even one tunnel held: done')
})

/** Windows the search takes against a box that holds exactly `limit` tunnels, and what it found. */
function simulate (limit: number, start: number): { windows: number, lo: number, hi: number | null } {
  let lo = 0
  let hi: number | null = null
  let n: number | null = start
  let windows = 0
  while (n !== null && windows < 200) {
    windows++
    if (n <= limit) lo = n; else hi = n
    n = nextCount(lo, hi, search)
  }
  return { windows, lo, hi }
}

t.test('the search finds any monotone limit to its precision (property)', async t => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 1400 }), fc.integer({ min: 1, max: 300 }), (limit, start) => {
    const { windows, lo, hi } = simulate(limit, start)
    return windows < 200 && hi !== null && lo <= limit && hi > limit &&
      hi - lo <= Math.max(1, Math.ceil(lo * search.precision))
  }), { numRuns: 2000 })
  t.pass('2000 limits and starts: the last held and the first not held bracket the limit, within 4 %')
  // The full profile starts at 40 tunnels with 16 windows at most per layout: enough for limits
  // up to 500 tunnels (1 Gbit/s of 2 Mbit/s streams) of capped workers.
  fc.assert(fc.property(fc.integer({ min: 1, max: 500 }), limit => simulate(limit, 40).windows <= 16), { numRuns: 500 })
  t.pass('from 40 tunnels, any limit up to 500 is found in at most 16 windows')
})

function step (tunnels: number, workerCores: number[], o: Partial<CappedStep> = {}): CappedStep {
  const base = benchStep(tunnels, {
    cpuProcs: [0.02, ...workerCores.map(w => w * 2)], cpuSource: 0.4, cpuClient: 0.4, cpuMachine: 2
  })
  return {
    ...base,
    workerCores,
    throttledMs: workerCores.map(() => 100),
    workerTunnels: workerCores.map(() => Math.floor(tunnels / workerCores.length)),
    ...o
  }
}

function layout (id: 'b1' | 'b2', held: number, failed: number | null,
  atLimit: Partial<CappedStep> & { workers?: number[] } = {}): CappedLayout {
  const w = id === 'b1' ? [0.15] : [0.15, 0.15]
  const steps = [step(held, w.map(() => 0.12))]
  if (failed !== null) steps.push(step(failed, atLimit.workers ?? w, { held: false, late: 10, ...atLimit }))
  return {
    id,
    name: `layout ${id}`,
    workers: w.length,
    steps,
    heldTunnels: held,
    heldMbps: held * 2,
    failedTunnels: failed
  }
}

function capped (layouts: CappedLayout[], o: Partial<CappedScalingResult> = {}): CappedScalingResult {
  return {
    date: '2026-01-02T10:00:00.000Z',
    profile: 'full',
    durationSeconds: 120,
    machine: { nproc: 2, cpu: 'test cpu', kernel: 'k', loadavg: '0 0 0' },
    options: {
      workerCores: 0.15,
      startTunnels: 40,
      growth: 1.25,
      precision: 0.04,
      maxSteps: 16,
      maxTunnels: 1500,
      kbps: 2000,
      stepSeconds: 2,
      warmSeconds: 1,
      lateMs: 50
    },
    cgroup: 'v1',
    layouts,
    ...o
  }
}

const uncappedNotMet: Verdict = {
  target: 'Throughput scales with relay workers: 2 workers ≥ 1.7 × 1 worker',
  measured: '1.24× (machine-bound)',
  met: false
}

t.test('the capped ratio decides when both limits are the workers\'', async t => {
  const c = capped([layout('b1', 124, 127), layout('b2', 273, 280)])
  const found = cappedFinding(c)
  t.equal(found.ratio?.toFixed(2), (546 / 248).toFixed(2), 'b2 held ÷ b1 held')
  t.same(found.doubts, [], 'no doubt: workers at their quota, cores idle')
  const v = scalingVerdict(uncappedNotMet, c)
  t.equal(v.met, true, '≥ 1.7: met')
  t.match(v.measured, /capped at 0\.15 of a core/, 'says the workers were capped')
  t.match(v.measured, /uncapped .*1\.24× \(machine-bound\)/, 'and keeps the uncapped figure beside it')
  t.equal(scalingVerdict(uncappedNotMet, capped([layout('b1', 124, 127), layout('b2', 180, 186)])).met, false,
    '1.45×: not met')
  const md = renderCappedScaling(c).join('\n')
  t.match(md, /## Worker scaling with capped workers/)
  t.match(md, /\| b2: layout b2 \| 273 \/ 546 \| 280 \| 140 \+ 140 \| 0\.15 \+ 0\.15 \| 1\.00 \|/,
    'the limit row of b2 from the results, with its split over the workers')
  t.match(md, /the workers, not the machine, set both limits/)
})

t.test('several passes per layout: the mirrored order, and the ratio of the means', async t => {
  t.same(passOrder(2).map(x => `${x.id}.${x.pass}`), ['b1.1', 'b2.1', 'b2.2', 'b1.2'], 'b1 b2 b2 b1')
  t.same(passOrder(3).map(x => x.id), ['b1', 'b2', 'b2', 'b1', 'b1', 'b2'], 'then b1 b2 again')
  t.same(passOrder(0).map(x => x.id), ['b1', 'b2'], 'at least one pass')
  const pass = (l: CappedLayout, p: number): CappedLayout => ({ ...l, pass: p })
  const c = capped([pass(layout('b1', 100, 104), 1), pass(layout('b2', 150, 156), 1), pass(layout('b2', 250, 260), 2),
    pass(layout('b1', 140, 146), 2)],
  { options: { ...capped([]).options, passes: 2 } })
  const found = cappedFinding(c)
  t.equal(found.ratio?.toFixed(3), (400 / 240).toFixed(3), 'mean of b2 (300, 500) ÷ mean of b1 (200, 280)')
  t.same(found.b2?.passes, [300, 500], 'each pass kept, in the order measured')
  t.equal(found.b1?.tunnels, 120, 'the mean tunnel count')
  t.same(found.doubts, [], 'every pass at its workers\' limit')
  const v = scalingVerdict(uncappedNotMet, c)
  t.equal(v.met, false, '1.67×: not met, though the second pair alone (1.79×) would be')
  t.match(v.measured,
    /\*\*1\.67×\*\* \(b2 400 vs b1 240 Mbit\/s held, 200 vs 120 tunnels, the means of 2 searches each in the order b1 b2 b2 b1 \(b2 300, 500; b1 200, 280\)/)
  const lazy = capped([pass(layout('b1', 100, 104), 1), pass(layout('b2', 150, 156), 1),
    pass(layout('b2', 250, 260, { workers: [0.15, 0.08] }), 2), pass(layout('b1', 140, 146), 2)])
  t.match(cappedFinding(lazy).doubts.join(), /at b2 pass 2's limit \(260 tunnels\) a worker used 0\.08/,
    'a doubt names the pass')
  t.equal(scalingVerdict(uncappedNotMet, lazy).met, false,
    'one pass in doubt: inconclusive, the uncapped verdict stands')
  const md = renderCappedScaling(c).join('\n')
  t.match(md, /\| b2: layout b2 \(pass 2\) \| 250 \/ 500 \| 260 \|/, 'a summary row per pass')
  t.match(md, /### b1 capped \(pass 2\): layout b1/, 'a table per pass')
  t.match(md, /Each layout is searched 2 times, each time on a box started afresh, in the mirrored order b1 b2 b2 b1/,
    'the method says how')
  t.match(md, /Ratio held: b2 400 ÷ b1 240 Mbit\/s, the means of 2 searches/)
})

t.test('the capped ratio does not decide when it may not measure the workers', async t => {
  const idleNone = capped([layout('b1', 124, 127), layout('b2', 273, 280, { cpuMachine: 3.9 })])
  t.match(cappedFinding(idleNone).doubts.join(), /machine had 0\.05 cores idle/, 'no cores to spare at b2\'s limit')
  const v = scalingVerdict(uncappedNotMet, idleNone)
  t.equal(v.met, false, 'inconclusive: the uncapped verdict stands')
  t.match(v.measured, /inconclusive/)
  const lazy = capped([layout('b1', 124, 127, { workers: [0.09] }), layout('b2', 273, 280)])
  t.match(cappedFinding(lazy).doubts.join(), /b1's limit .* used 0\.09 of its 0\.15 cores/,
    'a worker below its quota at the limit')
  const open = capped([layout('b1', 124, 127), layout('b2', 1500, null)])
  t.match(cappedFinding(open).doubts.join(), /b2 never reached its limit/)
  t.equal(scalingVerdict(uncappedNotMet, open).met, false)
  const skipped = scalingVerdict(uncappedNotMet,
    capped([], { cgroup: null, skipped: 'capping a process\'s CPU with a cgroup needs root' }))
  t.equal(skipped.met, false, 'skipped: the uncapped verdict')
  t.match(skipped.measured, /capped workers not measured: capping .* needs root/)
  t.same(scalingVerdict(uncappedNotMet, undefined), uncappedNotMet, 'no capped run: as before')
})

t.test('a real CPU cap (cgroup) holds a busy process to its quota', async t => {
  t.equal(quotaUs(0.15), 1500, '0.15 of a 10 ms period')
  t.equal(quotaUs(0.01), 1000, 'at least the kernel\'s 1 ms')
  const child = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await new Promise(resolve => child.once('spawn', resolve))
  if (process.getuid?.() !== 0 || cpuHierarchy() === null) {
    t.throws(() => capCpu(child.pid!, 0.2, `tunnelgate-test-${process.pid}`), /no cgroup cpu controller|cannot cap/,
      'without root (or a cpu controller) it says why it cannot')
    return
  }
  const cap = capCpu(child.pid!, 0.2, `tunnelgate-test-${process.pid}`)
  t.ok(existsSync(cap.dir), 'a cgroup of its own')
  const c0 = cpuSeconds(child.pid!)
  await new Promise(resolve => setTimeout(resolve, 2000))
  const used = (cpuSeconds(child.pid!) - c0) / 2
  t.ok(used > 0.05 && used < 0.3, `a spinning process capped at 0.2 cores used ${used.toFixed(2)} cores`)
  t.ok(cap.throttled().periods > 0 && cap.throttled().ms > 0, 'held back by its quota, and the cgroup says so')
  cap.release()
  t.notOk(existsSync(cap.dir), 'released: the cgroup is gone')
  const c1 = cpuSeconds(child.pid!)
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.ok(cpuSeconds(child.pid!) - c1 > 0.5, 'and the process runs uncapped again')
  t.equal(removeEmptyCaps(`tunnelgate-test-${process.pid}`), 0, 'nothing of ours left to sweep')
})
