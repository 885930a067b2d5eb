/**
 * `tunnelgate bench`, the thin entry that runs the compiled bench package (bench/dist, built by
 * `npm run build:bench`): it re-renders the committed report byte for byte from its raw results,
 * and hands a refused command line's reason and exit status through.
 */
import t from 'tap'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docs = join(root, 'docs')
const bench = (...args: string[]): SpawnSyncReturns<string> => spawnSync(process.execPath,
  [join(root, 'bin', 'tunnelgate.js'), 'bench', ...args], { encoding: 'utf8', cwd: tmpdir(), timeout: 60_000 })

t.test('--render re-renders docs/benchmarks.{md,svg,json} byte for byte from docs/benchmarks.json', async t => {
  const out = mkdtempSync(join(tmpdir(), 'tg-bench-render-'))
  const r = bench('--render', join(docs, 'benchmarks.json'), '--out', out)
  t.equal(r.status, 0, `exit 0 ${r.stderr}`)
  for (const f of ['benchmarks.md', 'benchmarks.svg', 'benchmarks.json']) {
    t.ok(readFileSync(join(out, f)).equals(readFileSync(join(docs, f))), `${f}: the committed file, byte for byte`)
  }
})

t.test('a refused command line exits 2 with its reason', async t => {
  const bad = bench('--kbps', 'fast')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^tunnelgate bench: --kbps must be a number above 0 \(got 'fast'\)$/m)
  const unknown = bench('--scenario', 'a')
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /Unknown option '--scenario'/)
  const missing = bench('--render', join(tmpdir(), 'no-such-results.json'))
  t.equal(missing.status, 2)
  t.match(missing.stderr, /--render: no results read from .*no-such-results\.json/)
})

t.test('--help prints the usage', async t => {
  const r = bench('--help')
  t.equal(r.status, 0)
  t.match(r.stdout, /^Usage: tunnelgate bench /)
})
