/**
 * Every metric the Grafana dashboard (docker/grafana/dashboards/tunnelgate.json) queries exists in
 * /metrics of a running gateway's ops listener (read with its bearer token, as docker/prometheus.yml
 * scrapes it), with the relay in process and with local relay workers, after a real tunnel (ffmpeg
 * through the gateway to the embedded origin) so labelled series are present.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { startOrigin } from '../../src/origin/index.js'
import { startGateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { runPeer } from '../helpers/peers.js'

const DASHBOARD = new URL('../../docker/grafana/dashboards/tunnelgate.json', import.meta.url)
const quiet = { info () {}, warn () {}, error () {} }
const OPS_TOKEN = 'grafana-test-ops-token-0123'

/** Metric names in a PromQL expression (histogram series map to their base name). */
export function metricNames (expr: string): string[] {
  return [...new Set([...expr.matchAll(/\btunnelgate_[a-z0-9_]+/g)].map(m => m[0]))]
}

function exposed (text: string): Set<string> {
  const names = new Set<string>()
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line)
    if (m === null) continue
    names.add(m[1]!)
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1]! + s)
  }
  return names
}

const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  panels: Array<{ title: string, targets: Array<{ expr: string }> }>
}
const queried = [...new Set(dash.panels.flatMap(p => p.targets.flatMap(x => metricNames(x.expr))))]

t.test('the dashboard queries the promised figures', async t => {
  const exprs = dash.panels.flatMap(p => p.targets.map(x => x.expr)).join('\n')
  t.match(
    exprs,
    /histogram_quantile\(0\.99, sum by \(le\) \(rate\(tunnelgate_tunnel_setup_seconds_bucket/,
    'setup latency quantiles'
  )
  t.match(exprs, /sum by \(relay\) \(rate\(tunnelgate_relay_bytes_total/, 'Mbit/s per relay')
  t.match(exprs, /sum by \(backend\) \(rate\(tunnelgate_backend_bytes_total/, 'Mbit/s per backend')
  t.match(exprs, /tunnelgate_backend_choices_total/, 'balancer decisions')
  t.match(exprs, /sum by \(code\) \(rate\(tunnelgate_errors_total/, 'errors by code')
  t.ok(queried.length >= 12, `${queried.length} metrics queried`)
})

for (const workers of [0, 2]) {
  t.test(
    `every queried metric is in /metrics on the ops listener, read with its token as Prometheus does (workers: ${
      workers})`,
    async t => {
      const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
      t.teardown(() => origin.close())
      const gw = await startGateway(
        buildConfig([
          {
            port: 0,
            host: '127.0.0.1',
            logLevel: 'silent',
            workers,
            ops: { port: 0, token: OPS_TOKEN },
            backends: [`rtsp://127.0.0.1:${origin.port}`]
          }
        ])
      )
      t.teardown(() => gw.close())
      const r = await runPeer(
        'ffmpeg',
        [
          '-v',
          'error',
          '-rtsp_transport',
          'http',
          '-i',
          `rtsp://127.0.0.1:${gw.port}/demo`,
          '-t',
          '1',
          '-f',
          'null',
          '-'
        ],
        { timeoutMs: 30_000 }
      )
      t.equal(r.code, 0, `ffmpeg played 1 s through the gateway ${r.stderr.slice(0, 300)}`)
      t.equal((await fetch(`http://127.0.0.1:${gw.port}/metrics`)).status, 404, 'not on the tunnel port')
      t.equal((await fetch(`http://127.0.0.1:${gw.opsPort}/metrics`)).status, 401, 'not without the token')
      const text = await (
        await fetch(`http://127.0.0.1:${gw.opsPort}/metrics`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } })
      ).text()
      const have = exposed(text)
      for (const name of queried) t.ok(have.has(name), `${name} is exposed`)
      t.match(text, /tunnelgate_relay_bytes_total\{relay="(local|w\d+)"\} [1-9]/, 'relay bytes counted')
    }
  )
}
