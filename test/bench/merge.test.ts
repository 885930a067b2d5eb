/**
 * Merging a partial bench run into the report already in the output directory (run.ts
 * mergeResults / writeReport { merge }): `--scenarios live` alone replaces only the live section
 * and keeps the a–f scenarios, micro-benchmarks, machine and date of the earlier run; a run of
 * a–f keeps an earlier live section; the rendered report names the run (date, profile) each
 * section comes from. The results here are small hand-made objects (test data, not figures).
 */
import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBenchArgs } from '../../bench/src/args.js'
import { SMOKE } from '../../bench/src/options.js'
import { mergeResults, readResults, writeReport } from '../../bench/src/report-files.js'
import type { BenchResults } from '../../bench/src/results.js'
import { LIVE_STREAM, type LiveResult, type LiveStep } from '../../bench/src/live.js'
import type { CappedScalingResult } from '../../bench/src/capped-scaling.js'

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

function step (viewers: number): LiveStep {
  return {
    viewers,
    opened: viewers,
    failed: 0,
    seconds: 1,
    deliveredMbps: viewers * 0.5,
    perViewerKbps: 500,
    packets: 100 * viewers,
    lost: 0,
    late: 0,
    errors: 0,
    held: true,
    cpuServer: 0.01 * viewers,
    cpuPerGbit: 0.04,
    cpuAboveBaseline: null,
    cpuPerGbitAboveBaseline: null,
    viewersPerCore: 100,
    viewersPerCoreAboveBaseline: null,
    cpuSource: 0.05,
    cpuClient: 0.02,
    serverRssMB: 80,
    lagMs: { n: viewers, p50: 1, p99: 2, max: 3 }
  }
}

function live (date: string): LiveResult {
  return {
    date,
    profile: 'smoke',
    durationSeconds: 12,
    machine: { nproc: 2, loadavg: '1 1 1', gstreamer: '1.22.0' },
    options: {
      liveSteps: [2, 4],
      liveKbps: 500,
      liveSeconds: 0.6,
      warmSeconds: 0.2,
      liveLagMs: 100,
      openTimeoutMs: 5000,
      settleMs: 100,
      profile: 'smoke'
    },
    stream: { ...LIVE_STREAM, kbps: 500 },
    sides: [
      {
        id: 'tunnelgate',
        name: 'tunnelgate live fan-out',
        baseline: step(1),
        steps: [step(2), step(4)],
        heldViewers: 4,
        viewersPerCore: 100,
        kibPerViewer: 10
      },
      {
        id: 'gst',
        name: 'gst-rtsp-server',
        baseline: step(1),
        steps: [step(2), step(4)],
        heldViewers: 4,
        viewersPerCore: 90,
        kibPerViewer: 20
      }
    ]
  }
}

function boxes (date: string): BenchResults {
  return {
    date,
    profile: 'full',
    machine,
    options,
    durationSeconds: 600,
    micro: [{ name: 'demux', unit: 'packet', nsPerOp: 100, baseline: 'copy', baselineNsPerOp: 50, ratio: 2 }],
    scenarios: [{ id: 'a', name: 'tunnelgate all-in-one', sweep: [], heldTunnels: 0, heldMbps: 0, delay: [] }],
    referenceTunnels: 2
  }
}

function liveOnly (date: string): BenchResults {
  return {
    date,
    profile: 'smoke',
    machine,
    options,
    durationSeconds: 12,
    micro: [],
    scenarios: [],
    referenceTunnels: 0,
    live: live(date)
  }
}

t.test('mergeResults', async t => {
  const full = boxes('2026-01-01T10:00:00.000Z')
  const lv = liveOnly('2026-01-01T11:00:00.000Z')
  t.equal(mergeResults(null, lv), lv, 'nothing before: the run as is')
  const m = mergeResults(full, lv)
  t.equal(m.date, full.date, 'a live-only run keeps the earlier run\'s date')
  t.equal(m.scenarios, full.scenarios, '… its scenarios')
  t.equal(m.micro, full.micro, '… its micro-benchmarks')
  t.equal(m.live, lv.live, 'and brings its live section')
  const withLive = { ...full, live: live('2026-01-01T09:00:00.000Z') }
  const newer = liveOnly('2026-01-02T08:00:00.000Z')
  t.equal(mergeResults(withLive, newer).live?.date, '2026-01-02T08:00:00.000Z',
    'a newer live run replaces an older live section')
  const boxesRun = boxes('2026-01-03T10:00:00.000Z')
  const kept = mergeResults(withLive, boxesRun)
  t.equal(kept.date, boxesRun.date, 'a run of a–f is the new top level')
  t.equal(kept.live, withLive.live, 'and keeps the earlier live section')
  const both = { ...boxes('2026-01-04T10:00:00.000Z'), live: live('2026-01-04T10:10:00.000Z') }
  t.equal(mergeResults(withLive, both), both, 'a run of everything replaces everything')
})

function cappedOnly (date: string): BenchResults {
  const cappedScaling: CappedScalingResult = {
    date,
    profile: 'full',
    durationSeconds: 130,
    machine: { nproc: 2, cpu: 'test cpu', kernel: 'k', loadavg: '1 1 1' },
    options: {
      workerCores: 0.15,
      startTunnels: 40,
      growth: 1.25,
      precision: 0.04,
      maxSteps: 16,
      maxTunnels: 1500,
      kbps: 2000,
      stepSeconds: 2.5,
      warmSeconds: 1,
      lateMs: 50
    },
    cgroup: 'v1',
    layouts: []
  }
  return {
    date,
    profile: 'full',
    machine,
    options,
    durationSeconds: 130,
    micro: [],
    scenarios: [],
    referenceTunnels: 0,
    cappedScaling
  }
}

t.test('mergeResults: the capped worker scaling is a section of its own', async t => {
  const all = { ...boxes('2026-01-01T10:00:00.000Z'), live: live('2026-01-01T10:20:00.000Z') }
  const sc = cappedOnly('2026-01-02T10:00:00.000Z')
  const m = mergeResults(all, sc)
  t.equal(m.date, all.date, 'a scaling-only run keeps the a–f run\'s date')
  t.equal(m.scenarios, all.scenarios, '… its scenarios')
  t.equal(m.live, all.live, '… and the live section')
  t.equal(m.cappedScaling, sc.cappedScaling, 'and brings the capped scaling')
  const later = boxes('2026-01-03T10:00:00.000Z')
  const kept = mergeResults(m, later)
  t.equal(kept.date, later.date, 'a later run of a–f is the new top level')
  t.equal(kept.cappedScaling, sc.cappedScaling, 'and keeps the capped scaling')
  t.equal(kept.live, all.live, 'and the live section')
  const liveRun = liveOnly('2026-01-04T10:00:00.000Z')
  const both = mergeResults(kept, liveRun)
  t.equal(both.cappedScaling, sc.cappedScaling, 'a live-only run keeps the capped scaling too')
  t.equal(both.live, liveRun.live)
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-merge-capped-'))
  writeReport(dir, all)
  writeReport(dir, sc, { merge: true })
  const md = readFileSync(join(dir, 'benchmarks.md'), 'utf8')
  t.match(md, /\| worker scaling with capped workers \| 2026-01-02T10:00:00\.000Z \| full \|/,
    'the report names the capped run')
  t.match(md, /## Worker scaling with capped workers/, 'and renders its section')
  t.same(parseBenchArgs(['--scenarios', 'scaling', '--cap-worker-cores', '0.2'], '/tmp/x').scenarios, ['scaling'],
    '--scenarios scaling parses')
  t.equal(parseBenchArgs(['--cap-worker-cores', '0.2'], '/tmp/x').capWorkerCores, 0.2)
  t.ok(parseBenchArgs([], '/tmp/x').scenarios.includes('scaling'), 'the full run includes it')
})

t.test('writeReport { merge } reads the directory, writes the merged report naming each section\'s run', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-merge-'))
  t.equal(readResults(dir), null, 'empty directory: no results')
  writeReport(dir, boxes('2026-01-01T10:00:00.000Z'))
  const written = writeReport(dir, liveOnly('2026-01-01T11:00:00.000Z'), { merge: true })
  const json = JSON.parse(readFileSync(join(dir, 'benchmarks.json'), 'utf8')) as BenchResults
  t.same(json, written, 'benchmarks.json holds what writeReport returned')
  t.equal(json.date, '2026-01-01T10:00:00.000Z')
  t.same(json.scenarios.map(s => s.id), ['a'], 'scenario a kept')
  t.equal(json.live?.date, '2026-01-01T11:00:00.000Z', 'live section added')
  const md = readFileSync(join(dir, 'benchmarks.md'), 'utf8')
  t.match(md, /\| micro-benchmarks, scenarios a and the targets \| 2026-01-01T10:00:00\.000Z \| full \|/,
    'provenance of a–f')
  t.match(md, /\| live \(viewers per core on one live stream\) \| 2026-01-01T11:00:00\.000Z \| smoke \|/,
    'provenance of live')
  t.match(md, /## a: tunnelgate all-in-one/, 'a–f section still rendered')
  t.match(md, /## live: viewers per core on one live stream[\s\S]*From the run of 2026-01-01T11:00:00\.000Z/,
    'live section rendered with its run')
  t.match(md, /\| 4 \| 4 \| 2\.0 \| 500 \| 0 \| 0 \|/, 'live step rows come from the results')
  t.match(readFileSync(join(dir, 'benchmarks.svg'), 'utf8'), /Live: serving-process CPU per delivered Gbit/,
    'the chart gains the live panels')
  // Without merge (what --render does) the file is written as given.
  writeReport(dir, boxes('2026-01-05T10:00:00.000Z'))
  t.equal(readResults(dir)?.live, undefined, 'no merge: the given results only')
})

t.test('--scenarios live parses; unknown names are dropped', async t => {
  t.same(parseBenchArgs(['--scenarios', 'live', '--out', 'docs'], '/tmp/x').scenarios, ['live'])
  t.same(parseBenchArgs(['--scenarios', 'a,live,zz'], '/tmp/x').scenarios, ['a', 'live'])
  t.same(parseBenchArgs(['--live-steps', '10,20', '--live-kbps', '800'], '/tmp/x').liveSteps, [10, 20])
  t.ok(parseBenchArgs([], '/tmp/x').scenarios.includes('live'), 'the full run includes live')
})
