/**
 * The bench's command line (bench/src/args.ts): node:util parseArgs in strict mode, so a mistyped
 * flag, a stray word or a bad number stops the run before anything starts, with a message naming it.
 */
import t, { type Test } from 'tap'
import { BenchArgsError, parseBenchArgs, parseBenchCommand } from '../../bench/src/args.js'
import { FULL, QUICK, SMOKE } from '../../bench/src/options.js'

const parse = (...argv: string[]): ReturnType<typeof parseBenchCommand> => parseBenchCommand(argv, '/tmp/out')
const refused = (t: Test, argv: string[], message: RegExp, what: string): void => {
  t.throws(() => parseBenchCommand(argv, '/tmp/out'), BenchArgsError, `${what}: a BenchArgsError`)
  t.throws(() => parseBenchCommand(argv, '/tmp/out'), { message }, `${what}: says why`)
}

t.test('unknown flags, stray arguments and missing values are refused', async t => {
  refused(t, ['--kpbs', '100'], /Unknown option '--kpbs'/, 'a mistyped flag')
  refused(t, ['--quik'], /Unknown option '--quik'/, 'a mistyped boolean flag')
  refused(t, ['smoke'], /Unexpected argument 'smoke'/, 'a positional argument')
  refused(t, ['--kbps'], /'--kbps <value>' argument missing/, 'a flag without its value')
  refused(t, ['--quick=yes'], /'--quick' does not take an argument/, 'a value on a boolean flag')
  refused(t, ['--quick', '--smoke'], /give one of them/, 'two profiles')
  refused(t, ['--render', 'x.json', '--quick'], /--render takes only --out \(got --quick\)/, 'run flags with --render')
})

t.test('bad numbers are refused, naming the flag and the value', async t => {
  refused(t, ['--kbps', 'abc'], /--kbps must be a number above 0 \(got 'abc'\)/, 'not a number')
  refused(t, ['--kbps', '0'], /--kbps must be a number above 0/, 'zero bitrate')
  refused(t, ['--kbps=-5'], /--kbps must be a number above 0 \(got '-5'\)/, 'a negative bitrate')
  refused(t, ['--kbps', '-5'], /ambiguous/, 'a dash-led value without =')
  refused(t, ['--step-seconds', '1e3'], /--step-seconds must be a number above 0/, 'an exponent')
  refused(t, ['--tick-ms', ''], /--tick-ms must be a number above 0/, 'an empty value')
  refused(t, ['--scale', '1.5'], /--scale must be a whole number of at least 1 \(got '1.5'\)/, 'a fractional count')
  refused(t, ['--phases', '0'], /--phases must be a whole number of at least 1/, 'zero phases')
  refused(t, ['--scale-concurrency', '8x'], /--scale-concurrency must be a whole number/, 'trailing garbage')
  refused(t, ['--cap-passes', 'two'], /--cap-passes must be a whole number of at least 0/, 'a word for a count')
  refused(t, ['--steps', '10,,20'], /--steps must be a comma list of whole numbers of at least 1 \(got '10,,20'\)/,
    'an empty step')
  refused(t, ['--live-steps', '2,0'], /--live-steps must be a comma list/, 'a zero viewer step')
  refused(t, ['--scenarios', 'zz,yy'], /--scenarios names none of a, b1, b2, c, d, e, f, scaling, live/,
    'no scenario at all')
})

t.test('good values are taken', async t => {
  const c = parse('--quick', '--kbps', '2.5', '--steps', '10, 20', '--scale', '7', '--cap-worker-cores', '0.2',
    '--out', 'docs')
  t.equal(c.kind, 'run')
  if (c.kind !== 'run') return
  t.equal(c.options.profile, QUICK.profile, '--quick picks the quick profile')
  t.equal(c.options.kbps, 2.5, 'a decimal bitrate')
  t.same(c.options.steps, [10, 20], 'a comma list, spaces allowed')
  t.equal(c.options.scaleTunnels, 7)
  t.equal(c.options.capWorkerCores, 0.2)
  t.equal(c.options.outDir, 'docs')
  t.same(c.ignored, [])
  t.equal(parseBenchArgs([], '/tmp/out').outDir, '/tmp/out', 'the default report directory')
  t.equal(parseBenchArgs([], '/tmp/out').profile, FULL.profile, 'the full profile by default')
  t.equal(parseBenchArgs(['--smoke'], '/tmp/out').profile, SMOKE.profile)
  t.equal(parseBenchArgs(['--kbps=800'], '/tmp/out').kbps, 800, 'the --flag=value form')
  const some = parse('--scenarios', 'a,zz,live')
  t.same(some.kind === 'run' ? [some.options.scenarios, some.ignored] : null, [['a', 'live'], ['zz']],
    'an unknown scenario beside known ones is set aside and reported')
})

t.test('--help and --render are not runs', async t => {
  t.same(parse('--help'), { kind: 'help' })
  t.same(parse('-h', '--kbps', '5'), { kind: 'help' }, 'help wins')
  t.same(parse('--render', 'docs/benchmarks.json'), { kind: 'render', file: 'docs/benchmarks.json' })
  t.same(parse('--render', 'r.json', '--out', '/tmp/o'), { kind: 'render', file: 'r.json', outDir: '/tmp/o' })
  t.throws(() => parseBenchArgs(['--render', 'r.json'], '/tmp/out'), { message: /not a run/ })
})
