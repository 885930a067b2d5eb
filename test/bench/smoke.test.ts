/**
 * CI smoke form of the benchmark: a tiny configuration of every scenario (a handful of tunnels,
 * sub-second windows) that checks the tooling works end to end and writes its report. It asserts
 * that things ran and were measured, never a timing or a ratio (docs/benchmarks.md is produced by
 * the full run: `npm run bench`).
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runBench, SMOKE } from '../../src/bench/run.js'
import { haproxyVersion } from '../../src/bench/scenarios.js'

t.setTimeout(120_000)

t.test('bench smoke: every scenario runs and the report is written', async t => {
  const out = mkdtempSync(join(tmpdir(), 'tg-bench-smoke-'))
  const lines: string[] = []
  const r = await runBench({ ...SMOKE, outDir: out, log: l => { lines.push(l) } })
  t.comment(lines.join('\n'))
  const expected = haproxyVersion() === null ? ['a', 'b1', 'b2', 'c', 'e'] : ['a', 'b1', 'b2', 'c', 'd', 'e']
  t.same(r.scenarios.map(s => s.id), expected, 'every scenario ran (d needs haproxy)')
  for (const s of r.scenarios) {
    t.equal(s.error, undefined, `${s.id}: no error`)
    t.ok(s.scale !== undefined && s.scale.opened > 0 && s.scale.keepaliveAnswered > 0, `${s.id}: paused tunnels held and kept alive`)
    t.ok(s.setup !== undefined && s.setup.sequential.n > 0 && s.setup.parallel.n > 0, `${s.id}: setups measured`)
    t.ok(s.sweep.length > 0 && s.sweep[0]!.packets > 0, `${s.id}: RTP delivered in the sweep`)
    t.ok(s.sweep[0]!.delayMs.n > 0, `${s.id}: stamps read (one-way delay)`)
    t.ok(s.delay.length > 0, `${s.id}: delay phase ran`)
    if (s.id !== 'c') t.ok(s.sweep.some(x => x.cpuPerGbit !== null), `${s.id}: middle-box CPU read from /proc`)
  }
  t.ok(r.micro.length >= 4 && r.micro.every(m => m.nsPerOp > 0 && m.baselineNsPerOp > 0), 'micro-benchmarks ran')
  for (const f of ['benchmarks.md', 'benchmarks.json', 'benchmarks.svg']) t.ok(existsSync(join(out, f)), `${f} written`)
  const md = readFileSync(join(out, 'benchmarks.md'), 'utf8')
  t.match(md, /## Targets/)
  t.match(md, /## Machine/)
  t.match(readFileSync(join(out, 'benchmarks.svg'), 'utf8'), /^<svg /)
  t.same(JSON.parse(readFileSync(join(out, 'benchmarks.json'), 'utf8')).profile, 'smoke')
})
