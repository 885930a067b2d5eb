/**
 * CI smoke form of the benchmark: a tiny configuration of every scenario (a handful of tunnels,
 * sub-second windows; b1 and b2 again with each relay worker capped by a cgroup; the live scenario with 2 and 4
 * viewers of gst-rtsp-server's shared mount, through tunnelgate's live fan-out and directly) that checks the tooling
 * works end to end and
 * writes its report. It asserts
 * that things ran and were measured, never a timing or a ratio (docs/benchmarks.md is produced by
 * the full run: `npm run bench`).
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { SMOKE } from '../../bench/src/options.js'
import { runBench } from '../../bench/src/run.js'
import { haproxyVersion } from '../../bench/src/scenarios.js'

// A hang guard, not a timing check: about 80 s on an idle 2-core machine, much longer on a busy one.
t.setTimeout(600_000)

t.test('bench smoke: every scenario runs and the report is written', async t => {
  const out = mkdtempSync(join(tmpdir(), 'tg-bench-smoke-'))
  const lines: string[] = []
  const r = await runBench({ ...SMOKE, outDir: out, log: l => { lines.push(l) } })
  t.comment(lines.join('\n'))
  const expected = haproxyVersion() === null ? ['a', 'b1', 'b2', 'c', 'e', 'f'] : ['a', 'b1', 'b2', 'c', 'd', 'e', 'f']
  t.same(r.scenarios.map(s => s.id), expected, 'every scenario ran (d needs haproxy)')
  // The repeated 50 % windows come in rounds through every scenario after all of them have run.
  const rounds = lines.map((l, i) => /^delay round (\d+) of/.test(l) ? i : -1).filter(i => i >= 0)
  t.equal(rounds.length, SMOKE.delayRepeats, 'one round per repeat of the 50 % window')
  const lastPhase = lines.map((l, i) => /^f: /.test(l) ? i : -1).filter(i => i >= 0).pop() ?? -1
  t.ok(rounds.every(i => i > lastPhase), 'the rounds run after the last scenario\'s own phases')
  t.ok(lines.some(l => /^ {2}a @50% round 2 /.test(l)) && lines.some(l => /^ {2}f @50% round 2 /.test(l)),
    'each round measures every scenario')
  for (const s of r.scenarios) {
    t.equal(s.error, undefined, `${s.id}: no error`)
    t.ok(s.scale !== undefined && s.scale.opened > 0 && s.scale.keepaliveAnswered > 0,
      `${s.id}: paused tunnels held and kept alive`)
    t.equal(s.scale?.keepaliveAnswered, s.scale?.opened, `${s.id}: every paused tunnel answered its keepalive`)
    if (s.id === 'd') {
      t.equal(s.scale?.heapBytesPerTunnel, null, 'd: no heap figure for HAProxy (not a Node process, never signalled)')
    } else if (s.id !== 'c') {
      t.ok(s.scale?.gc === true && s.scale.heapAfterMB !== null && s.scale.heapAfterMB > 0,
        `${s.id}: memory read after a forced GC, with the V8 heap`)
    }
    t.ok([...s.sweep, ...s.delay].every(x => Number.isFinite(x.cpuMachine) && x.cpuMachine >= 0 &&
      x.cores === cpus().length), `${s.id}: whole-machine CPU recorded per window`)
    if (s.id === 'c' || s.id === 'd') {
      t.ok([...s.sweep, ...s.delay].every(x => x.gc === null), `${s.id}: no GC figures (no Node middle box)`)
    } else {
      t.ok([...s.sweep, ...s.delay].some(x => x.gc !== null && x.gc.count >= 0 && x.gc.totalMs >= 0),
        `${s.id}: the box's GC pauses read around the windows`)
    }
    if (s.id === 'b1' || s.id === 'b2') {
      t.ok(s.sweep.every(x => x.cpuProcs.length === (s.id === 'b1' ? 2 : 3)),
        `${s.id}: CPU of the portal and each worker`)
    }
    if (s.id === 'f') t.ok(s.sweep.every(x => x.cpuProcs.length === 2), 'f: CPU of the portal and of the relay node')
    t.ok(s.setup !== undefined && s.setup.sequential.n > 0 && s.setup.parallel.n > 0, `${s.id}: setups measured`)
    const bursts = s.setup?.bursts ?? []
    t.ok(bursts.length === SMOKE.setupBursts && bursts.every(b => b.box.n > 0 && b.direct.n > 0) &&
      s.setup?.parallel === bursts[0]?.box,
      `${s.id}: every burst of simultaneous setups through the box paired with a direct burst`)
    for (const part of [s.setup?.sequential, ...bursts.map(b => b.box)]) {
      const cpu = part?.cpu
      t.ok(cpu !== undefined && cpu.sourceUs > 0 && cpu.clientUs > 0 &&
        (s.id === 'c' ? cpu.boxUs === 0 : cpu.boxUs > 0),
        `${s.id}: CPU per setup read for the box, the source and the load generator`)
    }
    t.ok(s.sweep.length > 0 && s.sweep[0]!.packets > 0, `${s.id}: RTP delivered in the sweep`)
    t.ok(s.sweep[0]!.delayMs.n > 0, `${s.id}: stamps read (one-way delay)`)
    t.ok(s.delay.length > 0, `${s.id}: delay phase ran`)
    t.ok(s.delay.every(x => x.probeDelayMs !== undefined && x.probeDelayMs.n > 0),
      `${s.id}: the direct probes' delays recorded in every delay window`)
    t.ok(s.sweep.every(x => x.probeDelayMs === undefined), `${s.id}: no probes in the sweep`)
    const half = s.delay.find(x => x.fraction === 0.5)!
    t.ok(s.delayRepeats !== undefined && s.delayRepeats.length === SMOKE.delayRepeats &&
      s.delayRepeats.every(x =>
        x.fraction === 0.5 && x.tunnels === half.tunnels && x.probeDelayMs !== undefined && x.probeDelayMs.n > 0 &&
          x.packets > 0),
      `${s.id}: the 50 % window measured again, same load, with its probes`)
    t.ok([...s.sweep,
      ...s.delay].every(x =>
      x.clientStallMs !== undefined && x.clientStallMs.p99 >= 0 && x.clientStallMs.max >= x.clientStallMs.p99),
      `${s.id}: the load generator's own stalls recorded per window`)
    if (s.id === 'c') {
      t.equal(s.delayBoxFirst, undefined, 'c: no box to put first')
    } else if (process.getuid?.() === 0) {
      t.ok(s.delayBoxFirst !== undefined && s.delayBoxFirst.length === s.delay.length &&
        s.delayBoxFirst.every(x => x.probeDelayMs !== undefined && x.probeDelayMs.n > 0),
        `${s.id}: every delay window measured again with the box first, probes recorded`)
    } else {
      t.match(s.boxFirstSkipped, /nice/, `${s.id}: box first skipped without the right to raise priority, and said so`)
    }
    if (s.id !== 'c') t.ok(s.sweep.some(x => x.cpuPerGbit !== null), `${s.id}: middle-box CPU read from /proc`)
  }
  // /proc/stat counts in 10 ms ticks: one short, light window may read 0 busy, all of them together not.
  t.ok(r.scenarios.flatMap(s => [...s.sweep, ...s.delay]).reduce((n, x) => n + x.cpuMachine, 0) > 0,
    'the machine\'s busy time was read from /proc/stat')
  const lv = r.live
  t.ok(lv !== undefined, 'the live scenario ran')
  t.same(lv?.sides.map(s => s.id), ['tunnelgate', 'gst'], 'live: both sides')
  for (const s of lv?.sides ?? []) {
    t.equal(s.error, undefined, `live/${s.id}: no error`)
    t.ok(s.baseline !== null && s.baseline.packets > 0, `live/${s.id}: 1-viewer baseline received video`)
    t.same(s.steps.map(x => x.viewers), SMOKE.liveSteps, `live/${s.id}: every step measured`)
    for (const x of s.steps) {
      t.equal(x.opened, x.viewers, `live/${s.id} ${x.viewers}: every viewer playing`)
      t.ok(x.packets > 0 && x.deliveredMbps > 0, `live/${s.id} ${x.viewers}: RTP delivered`)
      t.ok(x.lagMs.n > 0, `live/${s.id} ${x.viewers}: lag behind the stream clock measured`)
      t.ok(x.cpuPerGbit !== null && x.serverRssMB > 0, `live/${s.id} ${x.viewers}: server CPU and RSS read from /proc`)
    }
  }
  const tgLive = lv?.sides.find(s => s.id === 'tunnelgate')
  t.ok(tgLive !== undefined && tgLive.steps.every(x => x.cpuSource > 0),
    'live/tunnelgate: its gst-rtsp-server source CPU read too')
  const cs = r.cappedScaling
  t.ok(cs !== undefined, 'the capped worker scaling ran')
  if (process.getuid?.() === 0) {
    t.equal(cs?.skipped, undefined, 'capped scaling: measured (root)')
    t.same(cs?.layouts.map(l => [l.id, l.pass, l.error]),
      [['b1', 1, undefined], ['b2', 1, undefined], ['b2', 2, undefined], ['b1', 2, undefined]],
      'capped scaling: b1 and b2 searched twice each, in mirrored order, no error')
    for (const l of cs?.layouts ?? []) {
      t.ok(l.steps.length > 0 && l.steps[0]!.packets > 0, `capped ${l.id}: RTP delivered`)
      t.ok(l.steps.every(x => x.workerCores.length === l.workers && x.throttledMs.length === l.workers),
        `capped ${l.id}: each worker's CPU and quota throttling read`)
      t.ok(l.steps.every(x =>
        x.workerTunnels.length === l.workers && x.workerTunnels.reduce((n, k) => n + k, 0) === x.tunnels),
        `capped ${l.id}: every window's tunnels found on the workers (/status/summary)`)
      t.ok(l.steps.every(x => x.workerCores.every(w => Number.isFinite(w) && w >= 0)),
        `capped ${l.id}: the workers' CPU read from /proc`)
    }
    // /proc counts in 10 ms ticks: a short, light window may read 0 for one worker, all of them together not.
    t.ok((cs?.layouts ?? []).flatMap(l => l.steps).reduce((n, x) => n + x.workerCores.reduce((a, b) => a + b, 0),
      0) > 0,
    'capped scaling: the relay workers did the work')
  } else t.match(cs?.skipped, /root/, 'capped scaling: skipped without root, and said so')
  t.ok(r.micro.length >= 4 && r.micro.every(m => m.nsPerOp > 0 && m.baselineNsPerOp > 0), 'micro-benchmarks ran')
  t.equal(r.micro.filter(m => m.unit === 'leg').length, 2,
    'the leg hand-off micro-benchmark ran against an idle and a busy worker stand-in')
  for (const f of ['benchmarks.md', 'benchmarks.json', 'benchmarks.svg']) t.ok(existsSync(join(out, f)), `${f} written`)
  const md = readFileSync(join(out, 'benchmarks.md'), 'utf8')
  t.match(md, /## Targets/)
  t.match(md, /\| leg hand-off to an idle relay worker \(10 sockets/, 'the hand-off rows are in the report')
  t.match(md, /## Machine/)
  t.match(md, /## Worker scaling: where the CPU went/)
  t.match(md, /## Worker scaling with capped workers/)
  t.match(md, /\*\*Scale\*\* \(scenarios /, 'the report explains the scale method')
  t.match(md, /\*\*Added delay, same window\*\*/, 'the report explains the direct probes')
  if (process.getuid?.() === 0) {
    t.match(md, /The same windows with the box first/, 'the box-first tables are in the report')
  }
  t.match(md, /## live: viewers per core on one live stream/)
  t.match(md, /### live\/tunnelgate: /)
  t.match(md, /### live\/gst: /)
  t.match(md,
    new RegExp(`\\| live \\(viewers per core on one live stream\\) \\| ${lv!.date.replace(/[.]/g, '\\.')} \\| smoke \\|`),
    'the report says which run the live figures come from')
  t.match(readFileSync(join(out, 'benchmarks.svg'), 'utf8'), /^<svg /)
  t.same(JSON.parse(readFileSync(join(out, 'benchmarks.json'), 'utf8')).profile, 'smoke')
})
