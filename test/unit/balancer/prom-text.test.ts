import { readFileSync } from 'node:fs'
import { Counter, Gauge, Histogram, Registry, Summary, collectDefaultMetrics } from 'prom-client'
import t from 'tap'
import { parsePromText, parsePromValue, sumBy, valueOf, type PromSample } from '../../../src/balancer/prom-text.js'
import { createMetrics } from '../../../src/core/metrics.js'

/**
 * test/fixtures/prom/tunnelgate.txt is prom-client 15.1.3 output of createMetrics() (with default
 * process metrics) after the values asserted below were set. Regenerate it with a script that calls
 * createMetrics(), sets those values, and writes `await metrics.registry.metrics()`.
 */
const FIXTURE = new URL('../../fixtures/prom/tunnelgate.txt', import.meta.url)

/** Same label set, regardless of key order. */
function sameLabels (a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every(k => Object.hasOwn(b, k) && a[k] === b[k])
}

function sameValue (a: number, b: number): boolean { return a === b || (Number.isNaN(a) && Number.isNaN(b)) }

/**
 * Every value prom-client holds (getMetricsAsJSON) must be found exactly once among the parsed samples,
 * with the same value unless `values` is false (default process metrics change between two collections).
 * Returns the problems (empty when the round trip is exact).
 */
async function roundTrip (registry: Registry<any>, samples: PromSample[],
  values = true): Promise<{ expected: number, problems: string[] }> {
  const json = await registry.getMetricsAsJSON()
  let expected = 0
  const problems: string[] = []
  for (const metric of json) {
    for (const v of metric.values as Array<{
      value: number,
      labels: Record<string, string | number>,
      metricName?: string
    }>) {
      expected++
      const name = v.metricName ?? metric.name
      const labels = Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)]))
      const hit = samples.filter(s => s.name === name && sameLabels(s.labels, labels))
      if (hit.length !== 1 ||
        (values &&
          !sameValue(hit[0]!.value,
            v.value))) problems.push(`${name}${JSON.stringify(labels)} = ${v.value}: parsed ${JSON.stringify(hit)}`)
    }
  }
  if (samples.length !== expected) problems.push(`${samples.length} samples parsed, ${expected} values in the registry`)
  return { expected, problems }
}

const ODD = [
  'plain',
  'with "double quotes"',
  'back\\slash and \\\\ two',
  'line\nfeed and \\n literal',
  'braces {a="b"}, commas, = signs and # hashes',
  '  spaces  and \ttab ',
  'unicode \u00e9\u4e2d\u{1f36a}',
  '',
  '\\"\n\\'
]

t.test('prom-client registry with odd label values round-trips', async (t) => {
  const registry = new Registry()
  const registers = [registry]
  const gauge = new Gauge({
    name: 'odd_gauge',
    help: 'help with \\ backslash and\nnewline',
    labelNames: ['v', 'k'],
    registers
  })
  const counter = new Counter({ name: 'odd_events_total', help: 'a counter', labelNames: ['v'], registers })
  const hist = new Histogram({
    name: 'odd_seconds',
    help: 'a histogram',
    labelNames: ['v'],
    buckets: [0.001, 0.5, 2],
    registers
  })
  const summary = new Summary({
    name: 'odd_summary',
    help: 'a summary',
    labelNames: ['v'],
    percentiles: [0.5, 0.99],
    registers
  })
  new Gauge({ name: 'odd_unlabelled', help: 'no labels', registers }).set(-12.5)
  ODD.forEach((v, i) => {
    gauge.set({ v, k: String(i) }, i * 1.25 - 3)
    counter.inc({ v }, i + 1)
    hist.observe({ v }, i / 4)
    summary.observe({ v }, i)
  })
  const specials = new Gauge({ name: 'odd_specials', help: 'special floats', labelNames: ['which'], registers })
  specials.set({ which: 'nan' }, NaN) // prom-client writes "Nan"
  specials.set({ which: 'inf' }, Infinity)
  specials.set({ which: 'ninf' }, -Infinity)
  specials.set({ which: 'tiny' }, 1e-9)
  specials.set({ which: 'huge' }, Number.MAX_VALUE)
  specials.set({ which: 'negzero' }, -0)
  specials.set({ which: 'big' }, 2 ** 53 + 2)
  const text = await registry.metrics()
  t.match(text, /odd_specials\{which="nan"\} Na[Nn]\n/, 'prom-client 15 writes NaN as "Nan"')
  t.match(text, /\\"double quotes\\"/, 'prom-client escapes quotes')
  const samples = parsePromText(text)
  const rt = await roundTrip(registry, samples)
  t.ok(rt.expected > 80, `${rt.expected} values`)
  t.same(rt.problems, [], 'every value round-trips exactly')
  t.same(samples.find(s => s.labels.v === 'line\nfeed and \\n literal' && s.name === 'odd_gauge')?.labels,
    { v: 'line\nfeed and \\n literal', k: '3' }, 'escapes are undone exactly')
  t.equal(valueOf(samples, 'odd_specials', { which: 'inf' }), Infinity)
  t.ok(Number.isNaN(valueOf(samples, 'odd_specials', { which: 'nan' })))
})

t.test('prom-client default metrics and OpenMetrics output parse', async (t) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  await new Promise(resolve => setTimeout(resolve, 50))
  const samples0 = parsePromText(await registry.metrics())
  const rt = await roundTrip(registry, samples0, false)
  t.ok(rt.expected > 30, `${rt.expected} default-metric series`)
  t.same(rt.problems, [], 'every default-metric series parses (values are live)')
  t.equal(valueOf(samples0, 'nodejs_version_info', { version: process.version }), 1)
  t.equal(valueOf(samples0, 'process_start_time_seconds'), Math.round(Date.now() / 1000 - process.uptime()))

  const om = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>()
  om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  const hist = new Histogram({
    name: 'om_seconds',
    help: 'h',
    labelNames: ['x'],
    buckets: [0.5, 1],
    registers: [om],
    enableExemplars: true
  })
  hist.observe({ labels: { x: 'a' }, value: 0.3, exemplarLabels: { traceId: 'abc"def' } as Record<string, string> })
  new Counter({ name: 'om_events', help: 'c', registers: [om] }).inc(2)
  const text = await om.metrics()
  t.match(text, /# \{traceId="abc\\"def"\} 0\.3/, 'OpenMetrics text carries an exemplar')
  t.match(text, /# EOF\n?$/)
  const samples = parsePromText(text)
  t.equal(valueOf(samples, 'om_seconds_count', { x: 'a' }), 1, 'exemplar after the value is ignored')
  t.equal(valueOf(samples, 'om_seconds_bucket', { x: 'a', le: '0.5' }), 1)
  t.equal(valueOf(samples, 'om_events_total'), 2)
})

t.test('captured tunnelgate exposition (test/fixtures/prom/tunnelgate.txt)', async (t) => {
  const text = readFileSync(FIXTURE, 'utf8')
  const samples = parsePromText(text)
  t.ok(samples.length > 80, `${samples.length} samples`)
  t.equal(valueOf(samples, 'tunnelgate_tunnels_active'), 3)
  t.same(sumBy(samples, 'tunnelgate_backend_sessions', 'backend'), new Map([['origin1:8554', 2], ['origin2:8554', 1]]))
  t.same(sumBy(samples, 'tunnelgate_backend_choices_total', 'backend'),
    new Map([['origin1:8554', 7], ['origin2:8554', 5]]))
  t.equal(valueOf(samples, 'tunnelgate_tunnels_total', { outcome: 'error' }), 2)
  t.equal(valueOf(samples, 'tunnelgate_bytes_total', { direction: 'backend_to_client' }), 987654321)
  t.equal(valueOf(samples, 'tunnelgate_tunnel_setup_seconds_bucket', { le: '0.025' }), 2)
  t.equal(valueOf(samples, 'tunnelgate_tunnel_setup_seconds_bucket', { le: '+Inf' }), 3)
  t.equal(valueOf(samples, 'tunnelgate_tunnel_setup_seconds_sum'), 0.324)
  t.equal(valueOf(samples, 'tunnelgate_rtsp_requests_total', { method: 'SETUP' }), 24)
  t.equal(valueOf(samples, 'tunnelgate_web_requests_total', { route: '/metrics', status: '200' }), 4)
  t.ok((valueOf(samples, 'tunnelgate_process_resident_memory_bytes') ?? 0) > 1e6, 'default process metrics present')
  // Every tunnelgate_* family in the fixture is still registered by createMetrics() (catches a rename).
  const live = new Set((await createMetrics().registry.getMetricsAsJSON()).map(m => m.name))
  const types = [...text.matchAll(/^# TYPE (\S+) /gm)].map(m => m[1]!)
  t.ok(types.length > 20)
  t.same(types.filter(n => !live.has(n)), [], 'fixture metric names exist in src/core/metrics.ts')
})

t.test('exposition-format examples from the Prometheus documentation', async (t) => {
  const text = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
`
  const s = parsePromText(text)
  t.equal(s.length, 14)
  t.same(s[0], {
    name: 'http_requests_total',
    labels: { method: 'post', code: '200' },
    value: 1027,
    timestampMs: 1395066363000
  })
  t.same(s[1]!.value, 3)
  t.same(s[2], {
    name: 'msdos_file_access_time_seconds',
    labels: { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' },
    value: 1458255915
  })
  t.same(s[3], { name: 'metric_without_timestamp_and_labels', labels: {}, value: 12.47 })
  t.same(s[4], {
    name: 'something_weird',
    labels: { problem: 'division by zero' },
    value: Infinity,
    timestampMs: -3982045
  })
  t.equal(valueOf(s, 'rpc_duration_seconds_sum'), 17560473)
  t.equal(valueOf(s, 'rpc_duration_seconds', { quantile: '0.99' }), 76656)
  t.same(sumBy(s, 'http_requests_total', 'method'), new Map([['post', 1030]]))
})

t.test('accepted variations', async (t) => {
  const cases: Array<[string, PromSample[]]> = [
    ['a 1\r\nb 2\r\n', [{ name: 'a', labels: {}, value: 1 }, { name: 'b', labels: {}, value: 2 }]],
    ['\ta{x="1",} \t 2\t', [{ name: 'a', labels: { x: '1' }, value: 2 }]],
    ['a { x = "1" , y="2" } 3', [{ name: 'a', labels: { x: '1', y: '2' }, value: 3 }]],
    ['a{} 4', [{ name: 'a', labels: {}, value: 4 }]],
    ['ns:sub_metric:rate5m 5e-3', [{ name: 'ns:sub_metric:rate5m', labels: {}, value: 0.005 }]],
    ['a NaN\nb nan\nc +inf\nd -Inf\ne Inf\nf .5\ng -1.', [
      { name: 'a', labels: {}, value: NaN }, { name: 'b', labels: {}, value: NaN }, {
        name: 'c',
        labels: {},
        value: Infinity
      },
      { name: 'd', labels: {}, value: -Infinity }, { name: 'e', labels: {}, value: Infinity }, {
        name: 'f',
        labels: {},
        value: 0.5
      },
      { name: 'g', labels: {}, value: -1 }]],
    ['{"my.metric", "label.with.dots"="v"} 6', [{ name: 'my.metric', labels: { 'label.with.dots': 'v' }, value: 6 }]],
    ['# just a comment\n#\n# HELP a x\n# TYPE a gauge\na 7 # {trace="1"} 1', [{ name: 'a', labels: {}, value: 7 }]],
    ['a{__proto__="p",constructor="c"} 8',
      [{ name: 'a', labels: JSON.parse('{"__proto__":"p","constructor":"c"}'), value: 8 }]],
    ['', []],
    ['\n\n   \n', []]
  ]
  for (const [text, expected] of cases) {
    const got = parsePromText(text)
    t.equal(got.length, expected.length, JSON.stringify(text))
    got.forEach((g, i) => {
      const e = expected[i]!
      t.ok(g.name === e.name && sameLabels(g.labels, e.labels) && sameValue(g.value, e.value),
        `${JSON.stringify(text)} sample ${i}: ${JSON.stringify(g)}`)
    })
  }
  t.equal(parsePromValue('1_000'), undefined, 'no Go-literal underscores')
  t.equal(parsePromValue('0x10'), undefined, 'no hex')
  t.equal(parsePromValue(''), undefined)
})

t.test('malformed lines throw a SyntaxError naming the line', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['a', /line 1: invalid value ''/],
    ['ok 1\na{x="1"}', /line 2: invalid value/],
    ['a{x="1} 2', /unterminated quoted string/],
    ['a{x="\\t"} 2', /invalid escape '\\t'/],
    ['a{x=1} 2', /expected '"'/],
    ['a{x="1" y="2"} 3', /expected ',' or '}'/],
    ['a{x="1",x="2"} 3', /duplicate label 'x'/],
    ['a{1x="1"} 3', /expected a label name/],
    ['a 0x10', /invalid value '0x10'/],
    ['a 1 2.5', /invalid timestamp '2.5'/],
    ['a 1 2 3', /unexpected text after the sample/],
    ['9a 1', /expected a metric name/],
    ['{x="1"} 1', /expected a metric name/],
    ['# TYPE a fancy', /unknown metric type 'fancy'/],
    ['# HELP', /needs a metric name/]
  ]
  for (const [text, re] of bad) {
    t.throws(() => parsePromText(text), { name: 'SyntaxError', message: re }, JSON.stringify(text))
  }
})

t.test('sumBy and valueOf', async (t) => {
  const s = parsePromText([
    'tunnelgate_backend_sessions{backend="o1",relay="r1"} 2',
    'tunnelgate_backend_sessions{backend="o2",relay="r1"} 1',
    'tunnelgate_backend_sessions{backend="o1",relay="r2"} 5',
    'tunnelgate_backend_sessions{relay="r3"} 9',
    'tunnelgate_tunnels_active 4'
  ].join('\n'))
  t.same(sumBy(s, 'tunnelgate_backend_sessions', 'backend'), new Map([['o1', 7], ['o2', 1]]),
    'samples without the label are left out')
  t.same(sumBy(s, 'tunnelgate_backend_sessions', 'relay'), new Map([['r1', 3], ['r2', 5], ['r3', 9]]))
  t.same(sumBy(s, 'missing', 'backend'), new Map())
  t.same(sumBy(s, 'tunnelgate_backend_sessions', 'toString'), new Map(), 'no prototype keys')
  t.equal(valueOf(s, 'tunnelgate_tunnels_active'), 4)
  t.equal(valueOf(s, 'tunnelgate_backend_sessions', { backend: 'o1' }), 2, 'first match of a label subset')
  t.equal(valueOf(s, 'tunnelgate_backend_sessions', { backend: 'o1', relay: 'r2' }), 5)
  t.equal(valueOf(s, 'tunnelgate_backend_sessions', { backend: 'o3' }), undefined)
  t.equal(valueOf(s, 'tunnelgate_backend_sessions', { constructor: 'x' }), undefined)
})
