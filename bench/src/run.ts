/**
 * The benchmark run: micro-benchmarks of the hot path, then every scenario (scenarios.ts) through
 * the same phases against one bench source, all in one run so every ratio compares figures taken
 * on the same machine minutes apart:
 *
 *   scale    N paused tunnels held at once, each opened as QuickTime does (DESCRIBE, SETUP,
 *            PLAY, PAUSE, POST closed) before the next ones, one GET_PARAMETER keepalive round
 *            answered; middle-box memory delta / N after a forced GC (RSS, and V8 heap for Node boxes)
 *   setup    GET written → first RTP byte, over S sequential setups, then B bursts of P
 *            simultaneous ones, each just after a burst straight to the source (direct); the CPU
 *            the box, the source and the load generator spent per setup in each part
 *   sweep    N tunnels × bitrate, N stepping up until a step loses or delays (late) a packet;
 *            CPU-s of the middle box per delivered Gbit at every step
 *   delay    one-way delay per RTP packet at 25/50/90 % of the load tunnelgate (a) held; then
 *            rounds through every scenario that measure its 50 % window again (delayRounds)
 *
 * The `live` scenario (live.ts) runs after them with its own baseline: one live stream
 * to N viewers, tunnelgate's live fan-out vs gst-rtsp-server's shared media.
 *
 * Then writes benchmarks.json, benchmarks.md and benchmarks.svg into `outDir`, MERGED with the
 * results already there (report-files.ts mergeResults): a run of `--scenarios live` alone replaces only the live
 * section of an existing report; a run of a–f keeps an existing live section. Every section says
 * which run (date, profile) its figures come from.
 */
import { execSync } from 'node:child_process'
import { cpus, release } from 'node:os'
import { join } from 'node:path'
import { memorySnapshot, setThreadsNice, threadCpuSeconds } from './procstat.js'
import { BenchTunnel, percentile, pool } from './load.js'
import { closeAll, Ctx, measureUndisturbed, openMany, sleep, stepLine, withTimeout } from './window.js'
import type { BenchOptions } from './options.js'
import type { BenchResults, ScenarioResult, SetupBurstPair, SetupCpu, SetupSummary, Summary } from './results.js'
import { writeReport } from './report-files.js'
import {
  hardNofile, haproxyVersion, NOFILE, raiseOwnNofile, SCENARIOS, startScenario, startSource, type Running,
  type ScenarioId
} from './scenarios.js'
import { runHandoffMicro } from './ipc-handoff.js'
import { runMicro } from './micro.js'
import { runLive } from './live.js'
import { runCappedScaling } from './capped-scaling.js'

function version (cmd: string, re: RegExp): string | null {
  try {
    return re.exec(execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1] ?? null
  } catch { return null }
}

export function machineInfo (): BenchResults['machine'] {
  let load = ''
  try { load = execSync('cat /proc/loadavg', { encoding: 'utf8' }).trim() } catch {}
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    kernel: release(),
    node: process.version,
    ffmpeg: version('ffmpeg -version', /ffmpeg version (\S+)/),
    haproxy: haproxyVersion(),
    gstreamer: version('gst-launch-1.0 --version', /GStreamer (\S+)/),
    loadavg: load
  }
}

function summarize (ns: number[], failed: number): Summary {
  const a = Float64Array.from(ns).sort()
  return {
    n: a.length,
    failed,
    p50: percentile(a, 50) / 1e6,
    p99: percentile(a, 99) / 1e6,
    max: a.length === 0 ? NaN : a[a.length - 1]! / 1e6
  }
}

/**
 * How many paused tunnels this scenario can hold here, and why not more. A middle-box process
 * holds 2 descriptors per paused tunnel (its GET and the upstream connection; QuickTime closed
 * the POST), so one process (tunnelgate all-in-one, HAProxy, the raw relay, b1's single worker)
 * is capped near half the open-files hard limit; b2's two relay workers each hold half the
 * tunnels (the portal hands the legs over and keeps none). The bench source holds 1 per tunnel
 * (upstream session, or the GET it terminates), the load generator 1 (its GET) plus the POSTs
 * in flight.
 */
export function scaleCap (
  id: ScenarioId, requested: number, boxNofile: number, ownNofile: number, concurrency: number
): { n: number, reason: string | null } {
  const reserve = 400
  const relayProcs = id === 'b2' ? 2 : 1
  const box = id === 'c' ? Infinity : Math.floor(((boxNofile - reserve) * relayProcs) / 2)
  const source = boxNofile - reserve
  const load = ownNofile - reserve - 2 * concurrency
  const n = Math.max(0, Math.min(requested, box, source, load))
  if (n >= requested) return { n, reason: null }
  if (n === box) {
    return {
      n,
      reason: 'open-files hard ' +
        `limit ${boxNofile}: ` +
        (relayProcs === 1
          ? 'one middle-box process holds'
          : `each of ${relayProcs} relay workers holds its share ` +
            'of') + ' 2 descriptors per paused tunnel (GET + upstream)'
    }
  }
  if (n === source) {
    return { n, reason: `open-files hard limit ${boxNofile} of the bench source (1 descriptor per tunnel)` }
  }
  return {
    n,
    reason: `open-files limit ${ownNofile} of the load generator (1 descriptor per paused tunnel ` +
      `+ ${2 * concurrency} in flight)`
  }
}

async function scalePhase (box: Running, ctx: Ctx, r: ScenarioResult): Promise<void> {
  const o = ctx.o
  const boxNofile = Math.min(NOFILE, hardNofile())
  const cap = scaleCap(r.id, o.scaleTunnels, boxNofile, ctx.nofile, o.scaleConcurrency)
  const n = cap.n
  if (cap.reason !== null) o.log(`  ${r.id} scale: capped at ${n} tunnels by the ${cap.reason}`)
  const list: BenchTunnel[] = []
  await sleep(o.settleMs / 2)
  const mem0 = await memorySnapshot(box.pids(), box.gcDir)
  const t0 = performance.now()
  const deadline = t0 + o.scaleOpenSeconds * 1000
  const progress = setInterval(() => o.log(`  ${r.id} scale: ${list.length}/${n} tunnels open`), 5000)
  const errors: Record<string, number> = {}
  // Each tunnel is opened as QuickTime does and paused before its slot opens the next one, so
  // the tunnels already held are idle (keepalive only) while the rest open.
  const addrs = Array.from({ length: Math.max(1, o.scaleAddresses) }, (_, i) => `127.0.0.${i + 1}`)
  const fresh = Array.from(
    { length: n },
    (_, i) => new BenchTunnel({
      port: box.port,
      path: '/b/100',
      stats: ctx.stats,
      timeoutMs: o.openTimeoutMs,
      localAddress: addrs[i % addrs.length]
    })
  )
  try {
    await pool(fresh, o.scaleConcurrency, async t => {
      if (performance.now() > deadline) return
      try {
        await t.open()
        const status = await withTimeout(t.pause(), o.openTimeoutMs)
        if (status !== 200) throw new Error(`PAUSE: RTSP ${status}`)
        t.closePost()
        list.push(t)
      } catch (err) {
        const m = (err as Error).message
        errors[m] = (errors[m] ?? 0) + 1
        t.close()
      }
    })
  } finally { clearInterval(progress) }
  const openSeconds = (performance.now() - t0) / 1000
  if (Object.keys(errors).length > 0) {
    o.log(`    paused tunnels that failed to open: ${Object.entries(errors).map(([m, k]) => `${k} × ${m}`).join(', ')}`)
  }
  await sleep(o.settleMs * 1.5)
  const mem1 = await memorySnapshot(box.pids(), box.gcDir)
  let answered = 0
  // As many keepalive POSTs in flight as opening ones: each holds a descriptor in the box too.
  await pool(list.slice(), o.scaleConcurrency, async t => {
    try { if (await withTimeout(t.keepalive(), o.openTimeoutMs) === 200) { answered++ } } catch {} t.closePost()
  })
  const held = list.filter(t => !t.closed).length
  const per = (
    a: number | null, b: number | null
  ): number | null => a === null || b === null || held === 0 ? null : (b - a) / held
  r.scale = {
    requested: o.scaleTunnels,
    limit: n,
    capReason: cap.reason,
    nofile: boxNofile,
    opened: held,
    keepaliveAnswered: answered,
    rssBeforeMB: mem0.rss / 1048576,
    rssAfterMB: mem1.rss / 1048576,
    bytesPerTunnel: per(mem0.rss, mem1.rss),
    heapBeforeMB: mem0.heap === null ? null : mem0.heap / 1048576,
    heapAfterMB: mem1.heap === null ? null : mem1.heap / 1048576,
    heapBytesPerTunnel: per(mem0.heap, mem1.heap),
    gc: mem0.gc && mem1.gc,
    openSeconds,
    openErrors: errors
  }
  const kib = (v: number | null): string => v === null ? '-' : (v / 1024).toFixed(1)
  o.log(`  ${r.id} scale: ${held}/${n} paused tunnels held, ${answered} keepalives ` +
    `answered, ${kib(r.scale.bytesPerTunnel)} KiB RSS/tunnel, ${kib(r.scale.heapBytesPerTunnel)} KiB ` +
    `heap/tunnel${r.scale.gc ? ' (after GC)' : ''} (${openSeconds.toFixed(1)} s to open)`)
  closeAll(list)
  await sleep(Math.min(5000, o.settleMs + n / 4))
}

/**
 * Start counting the CPU of the box's processes, the source and this process (every thread, to
 * the ns where the kernel keeps schedstat: a burst of setups is shorter than a few clock ticks);
 * the function returned reads it back per setup.
 */
function setupCpuMeter (box: Running, ctx: Ctx): (setups: number) => SetupCpu {
  const pids = box.pids()
  const box0 = pids.map(threadCpuSeconds)
  const source0 = threadCpuSeconds(ctx.sourcePid)
  const self0 = process.cpuUsage()
  return setups => {
    const per = Math.max(1, setups)
    const boxS = pids.reduce((n, p, i) => n + Math.max(0, threadCpuSeconds(p) - box0[i]!), 0)
    const self = process.cpuUsage(self0)
    return {
      boxUs: boxS * 1e6 / per,
      sourceUs: Math.max(0, threadCpuSeconds(ctx.sourcePid) - source0) * 1e6 / per,
      clientUs: (self.user + self.system) / per
    }
  }
}

/**
 * One burst of `setupParallel` simultaneous setups against `port`, with the CPU it cost per setup
 * from the first GET until the last tunnel played (or failed); the closes come after.
 */
async function setupBurst (port: number, box: Running, ctx: Ctx): Promise<SetupSummary> {
  const times: number[] = []
  let failed = 0
  const list = Array.from(
    { length: ctx.o.setupParallel },
    () => new BenchTunnel({ port, path: '/b/200', stats: ctx.stats, timeoutMs: ctx.o.openTimeoutMs })
  )
  const cpu = setupCpuMeter(box, ctx)
  await Promise.all(list.map(async t => { try { await t.open(); times.push(t.setupNs) } catch { failed++ } }))
  const used = cpu(ctx.o.setupParallel)
  closeAll(list)
  return { ...summarize(times, failed), cpu: used }
}

async function setupPhase (box: Running, ctx: Ctx, r: ScenarioResult): Promise<void> {
  const seq: number[] = []
  let failedSeq = 0
  const seqCpu = setupCpuMeter(box, ctx)
  for (let i = 0; i < ctx.o.setupSequential; i++) {
    const t = new BenchTunnel({ port: box.port, path: '/b/200', stats: ctx.stats, timeoutMs: ctx.o.openTimeoutMs })
    try { await t.open(); seq.push(t.setupNs) } catch { failedSeq++ }
    t.close()
  }
  const seqUsed = seqCpu(ctx.o.setupSequential)
  await sleep(ctx.o.settleMs / 3)
  // Each burst through the box comes just after one straight to the source (direct), so that the
  // added time is read from two bursts a moment apart, not from direct's phase minutes away; for
  // c the pairs are direct against direct, the control.
  const bursts: SetupBurstPair[] = []
  for (let i = 0; i < Math.max(1, ctx.o.setupBursts ?? 1); i++) {
    const direct = await setupBurst(ctx.sourcePort, box, ctx)
    await sleep(ctx.o.settleMs / 3)
    const through = await setupBurst(box.port, box, ctx)
    await sleep(ctx.o.settleMs / 3)
    bursts.push({ box: through, direct })
  }
  r.setup = { sequential: { ...summarize(seq, failedSeq), cpu: seqUsed }, parallel: bursts[0]!.box, bursts }
  const us = (c: SetupCpu | undefined): string => c === undefined
    ? ''
    : ` (CPU per setup: box ${c.boxUs.toFixed(0)} µs, source ${c.sourceUs.toFixed(0)}, load ` +
      `generator ${c.clientUs.toFixed(0)})`
  const pairs = bursts.map(
    b => `p50 ${b.box.p50.toFixed(2)} ms p99 ${b.box.p99.toFixed(2)} ms${us(b.box.cpu)} after direct ` +
      `p50 ${b.direct.p50.toFixed(2)} p99 ${b.direct.p99.toFixed(2)}`
  )
  ctx.o.log(`  ${r.id} setup: sequential p50 ${r.setup.sequential.p50.toFixed(2)} ms ` +
    `p99 ${r.setup.sequential.p99.toFixed(2)} ms${us(seqUsed)}; ${ctx.o.setupParallel} ` +
    `simultaneous: ${pairs.join('; ')}`)
  await sleep(ctx.o.settleMs / 2)
}

async function sweepPhase (box: Running, ctx: Ctx, r: ScenarioResult): Promise<void> {
  const list: BenchTunnel[] = []
  for (const n of ctx.o.steps) {
    await openMany(box, ctx, list, n, ctx.o.kbps)
    await sleep(ctx.o.warmSeconds * 1000)
    let s = await measureUndisturbed(box, ctx, r.id, n, ctx.o.stepSeconds)
    if (!s.held && list.length >= n) {
      // One retry: a spike from outside the bench should not end the sweep; a real limit repeats.
      ctx.o.log(stepLine(r.id, s) + ' (measuring again)')
      s = await measureUndisturbed(box, ctx, r.id, n, ctx.o.stepSeconds)
    }
    if (list.length < n) s.held = false
    r.sweep.push(s)
    ctx.o.log(stepLine(r.id, s))
    if (!s.held) break
    r.heldTunnels = n
    r.heldMbps = s.deliveredMbps
  }
  closeAll(list)
  await sleep(ctx.o.settleMs)
}

/** Tunnels at fraction `f` of the reference load (the delay windows). */
const tunnelsAt = (reference: number, f: number): number => Math.max(1, Math.round(reference * f))

/**
 * Open the direct probe tunnels (load generator → source, BenchOptions.delayProbes) into `probes`
 * and record them in every window from now on, beside the box's tunnels.
 */
async function openProbes (box: Running, ctx: Ctx, probes: BenchTunnel[]): Promise<void> {
  await openMany(
    { ...box, port: ctx.sourcePort }, ctx, probes, ctx.o.delayProbes ?? 0, ctx.o.kbps, {}, 16, Infinity, ctx.probeStats
  )
  ctx.probing = probes.length > 0
}

/** Stop recording the probes and close them and the box's tunnels. */
function closeDelayTunnels (ctx: Ctx, probes: BenchTunnel[], list: BenchTunnel[]): void {
  ctx.probing = false
  closeAll(probes)
  closeAll(list)
}

async function delayPhase (box: Running, ctx: Ctx, r: ScenarioResult, reference: number): Promise<void> {
  const list: BenchTunnel[] = []
  // Direct probes first: they play through every fraction, so each window holds the box's
  // tunnels and the probes under the same source, load generator and machine.
  const probes: BenchTunnel[] = []
  await openProbes(box, ctx, probes)
  for (const f of [...ctx.o.delayFractions].sort((x, y) => x - y)) {
    const n = tunnelsAt(reference, f)
    await openMany(box, ctx, list, n, ctx.o.kbps)
    await sleep(ctx.o.warmSeconds * 1000)
    const s = await measureUndisturbed(box, ctx, `${r.id} @${Math.round(f * 100)}%`, n, ctx.o.delaySeconds)
    r.delay.push({ ...s, fraction: f })
    ctx.o.log(stepLine(`${r.id} @${Math.round(f * 100)}%`, s))
    // The verdict's window (50 %) is measured again later, in rounds across the scenarios (delayRounds).
    const nice = ctx.o.boxFirstNice
    if (nice === undefined || box.pids().length === 0 || r.boxFirstSkipped !== undefined) continue
    if (!setThreadsNice(box.pids(), nice)) {
      setThreadsNice(box.pids(), 0)
      r.boxFirstSkipped = `could not set the box's threads to nice ${nice} (needs root or CAP_SYS_NICE)`
      ctx.o.log(`  ${r.id}: box-first windows skipped: ${r.boxFirstSkipped}`)
      continue
    }
    try {
      await sleep(ctx.o.warmSeconds * 500)
      const b = await measureUndisturbed(box, ctx, `${r.id} @${Math.round(f * 100)}% box first`, n, ctx.o.delaySeconds)
      ;(r.delayBoxFirst ??= []).push({ ...b, fraction: f })
      ctx.o.log(stepLine(`${r.id} @${Math.round(f * 100)}% box first`, b))
    } finally { setThreadsNice(box.pids(), 0) }
  }
  closeDelayTunnels(ctx, probes, list)
  await sleep(ctx.o.settleMs)
}

export async function runBench (o: BenchOptions): Promise<BenchResults> {
  const started = performance.now()
  const nofile = raiseOwnNofile()
  const hard = Math.min(NOFILE, hardNofile())
  if (o.scenarios.some(id => id in SCENARIOS) && hard < o.scaleTunnels * 2 + 400) {
    o.log(`note: open-files hard limit ${hard} is below what ${o.scaleTunnels} paused tunnels need in ONE middle-box ` +
      `process (2 per tunnel): single-process boxes (a, b1, d, e) are capped near ${Math.floor((hard - 400) / 2)}; ` +
      'b2\'s two relay workers share them (raise ulimit -Hn / LimitNOFILE to lift the cap)')
  }
  const ctx = new Ctx(o)
  ctx.nofile = nofile
  const { log: _log, outDir: _out, ...options } = o
  const results: BenchResults = {
    date: new Date().toISOString(),
    profile: o.profile,
    machine: machineInfo(),
    options,
    durationSeconds: 0,
    micro: [],
    scenarios: [],
    referenceTunnels: 0
  }
  o.log(`tunnelgate bench (${o.profile}): ${results.machine.nproc} × ${results.machine.cpu}, ` +
    `Linux ${results.machine.kernel}, Node ${results.machine.node}, ` +
    `HAProxy ${results.machine.haproxy ?? 'not installed'}; load ${results.machine.loadavg}`)
  const boxes = o.scenarios.filter((id): id is ScenarioId => id in SCENARIOS)
  if (boxes.length > 0) await runBoxes(o, ctx, results, boxes)
  if (o.scenarios.includes('scaling')) results.cappedScaling = await runCappedScaling(o)
  if (o.scenarios.includes('live')) results.live = await runLive(o)
  results.durationSeconds = (performance.now() - started) / 1000
  const written = writeReport(o.outDir, results, { merge: true })
  o.log(`report written to ${join(o.outDir, 'benchmarks.md')} (${results.durationSeconds.toFixed(0)} ` +
    `s)${written !== results ? ' (merged with the results already there)' : ''}`)
  return results
}

/**
 * The verdict's 50 % delay window measured again, `delayRepeats` more times per scenario, in rounds
 * that go through every scenario in turn once all of them have run: round k starts each box afresh,
 * opens the direct probes and the 50 % tunnels anew, warms up (twice `warmSeconds`, the box is
 * fresh) and measures one window. A noisy spell of the shared machine (seconds of another tenant's
 * work, which the same-window probes do not always cancel) then falls on one window of several
 * scenarios instead of on several windows of one, so the medians compare the boxes and not the
 * moments they were measured at. A round that fails for a scenario is logged and skipped; the
 * report says how many windows each median took.
 */
async function delayRounds (ctx: Ctx, results: BenchResults): Promise<void> {
  const o = ctx.o
  const repeats = o.delayRepeats ?? 0
  if (repeats === 0 || !o.delayFractions.includes(0.5) || results.referenceTunnels === 0) return
  const n = tunnelsAt(results.referenceTunnels, 0.5)
  const due = results.scenarios.filter(r => r.error === undefined && r.delay.some(w => w.fraction === 0.5))
  for (let k = 0; k < repeats; k++) {
    o.log(`delay round ${k + 2} of ${repeats + 1}: the 50 % window (${n} tunnels) ` +
      `of ${due.map(r => r.id).join(', ')}, each box started afresh`)
    for (const r of due) {
      const label = `${r.id} @50% round ${k + 2}`
      let box: Running | null = null
      const probes: BenchTunnel[] = []
      const list: BenchTunnel[] = []
      try {
        box = await startScenario(r.id, ctx.sourcePort)
        await sleep(o.settleMs / 3)
        await openProbes(box, ctx, probes)
        await openMany(box, ctx, list, n, o.kbps)
        await sleep(o.warmSeconds * 2000)
        const s = await measureUndisturbed(box, ctx, label, n, o.delaySeconds)
        ;(r.delayRepeats ??= []).push({ ...s, fraction: 0.5 })
        o.log(stepLine(label, s))
      } catch (err) { o.log(`  ${label}: failed, window skipped: ${(err as Error).message}`) } finally {
        closeDelayTunnels(ctx, probes, list)
        await box?.stop()
        await sleep(o.settleMs)
      }
    }
  }
}

/** Micro-benchmarks and the middle-box scenarios a–f (one bench source for all of them). */
async function runBoxes (o: BenchOptions, ctx: Ctx, results: BenchResults, boxes: ScenarioId[]): Promise<void> {
  const started = performance.now()
  o.log('micro-benchmarks of the hot path')
  results.micro = [...runMicro(o.microMs), ...await runHandoffMicro(o.handoffLegs, o.handoffBusyUs)]
  for (const m of results.micro) {
    o.log(`  ${m.name}: ${m.nsPerOp.toFixed(0)} ns/${m.unit}, ${m.ratio.toFixed(2)} × ${m.baseline} ` +
      `(${m.baselineNsPerOp.toFixed(0)} ns)`)
  }
  const source = await startSource(o.tickMs, o.phases)
  ctx.sourcePid = source.pid
  ctx.sourcePort = source.port
  try {
    for (const id of boxes) {
      if (id === 'd' && results.machine.haproxy === null) {
        o.log('d: skipped (haproxy not installed: apt-get install haproxy)')
        continue
      }
      const r: ScenarioResult = { id, name: SCENARIOS[id], sweep: [], heldTunnels: 0, heldMbps: 0, delay: [] }
      results.scenarios.push(r)
      o.log(`${id}: ${SCENARIOS[id]}  (${((performance.now() - started) / 1000).toFixed(0)} s into the run)`)
      let box: Running | null = null
      try {
        box = await startScenario(id, source.port)
        await sleep(o.settleMs / 3)
        if (o.scaleScenarios.includes(id)) await scalePhase(box, ctx, r)
        await setupPhase(box, ctx, r)
        await sweepPhase(box, ctx, r)
        if (results.referenceTunnels === 0) results.referenceTunnels = r.heldTunnels > 0 ? r.heldTunnels : o.steps[0]!
        await delayPhase(box, ctx, r, results.referenceTunnels)
      } catch (err) {
        r.error = (err as Error).message
        o.log(`  ${id}: failed: ${r.error}`)
      } finally { await box?.stop() }
    }
    await delayRounds(ctx, results)
  } finally { await source.stop() }
}
