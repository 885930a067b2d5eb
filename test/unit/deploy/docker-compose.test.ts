import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'
import { parse as parseYaml } from 'yaml'

const root = new URL('../../../', import.meta.url).pathname
const COMPOSE = `${root}docker/compose.yml`
const PROMETHEUS = `${root}docker/prometheus.yml`
const DOCKERFILE = `${root}docker/Dockerfile`

interface Service {
  image?: string
  command?: string[]
  environment?: Record<string, string>
  ports?: string[]
  entrypoint?: string[]
  volumes?: string[]
  networks?: Record<string, { aliases?: string[] } | null>
  cap_add?: string[]
}

function flag (cmd: readonly string[], name: string): string[] {
  const out: string[] = []
  cmd.forEach((a, i) => { if (a === name && cmd[i + 1] !== undefined) out.push(cmd[i + 1]!) })
  return out
}

/** The two secrets compose takes from the environment (it refuses to start without them). */
const SECRETS = {
  TUNNELGATE_OPS_TOKEN: 'compose-test-ops-token-0123',
  TUNNELGATE_CLUSTER_SECRET: 'compose-test-cluster-secret-0123'
}

t.test('docker-compose validates docker/compose.yml (no engine needed)', async (t) => {
  // The Debian docker-compose (1.29) validates and interpolates without talking to a Docker engine.
  const env = { ...process.env, ...SECRETS }
  const {
    stdout,
    stderr
  } = await promisify(execFile)('docker-compose', ['-f', COMPOSE, 'config', '-q'], { cwd: root, timeout: 60_000, env })
    .then(r => r, (err: { code: unknown, stdout: string, stderr: string }) => {
      t.fail(`docker-compose config -q exited ${String(err.code)}: ${err.stderr}`)
      return err
    })
  t.equal(stdout, '', 'nothing on stdout with -q')
  t.notMatch(stderr, /error/i, 'no errors on stderr')
  // Without the secrets compose refuses, naming the variable: no default token or secret exists.
  const bare = { ...process.env }
  for (const k of Object.keys(SECRETS)) Reflect.deleteProperty(bare, k)
  const refused = await promisify(execFile)('docker-compose', ['-f', COMPOSE, 'config', '-q'],
    { cwd: root, timeout: 60_000, env: bare }).then(() => null, (err: { stderr: string }) => err.stderr)
  t.match(refused ?? '', /TUNNELGATE_(OPS_TOKEN|CLUSTER_SECRET)/, 'no secret: refused, naming it')
})

t.test('compose.yml: 2 portals, 3 relays, 2 origins and Prometheus scraping each', async (t) => {
  const compose = parseYaml(readFileSync(COMPOSE, 'utf8'), { merge: true }) as { services: Record<string, Service> }
  const services = Object.entries(compose.services)
  const byRole = (role: string): Array<[string, Service]> => services.filter(([, s]) => s.command?.[0] === role)
  const portals = byRole('portal')
  const relays = byRole('relay')
  const origins = byRole('origin')
  t.equal(portals.length, 2, 'two portals')
  t.equal(relays.length, 3, 'three relays')
  t.equal(origins.length, 2, 'two origins')
  const prometheus = services.filter(([, s]) => s.image?.startsWith('prom/prometheus:') === true)
  t.equal(prometheus.length, 1, 'one Prometheus')
  t.notMatch(prometheus[0]![1].image!, /:latest$/, 'Prometheus image is pinned')
  t.ok(prometheus[0]![1].volumes?.some(v => v.startsWith('./prometheus.yml:')), 'mounts docker/prometheus.yml')

  // Portals find the relays through one DNS name that every relay carries as a network alias.
  for (const [name, s] of portals) {
    t.same(flag(s.command!, '--port'), ['80'], `${name} listens on 80`)
    t.same(flag(s.command!, '--relays'), ['dns:relay:8081'], `${name} uses dns:relay:8081`)
  }
  for (const [name, s] of relays) {
    t.same(flag(s.command!, '--port'), ['8081'], `${name} listens on 8081`)
    t.ok(s.networks?.default?.aliases?.includes('relay'), `${name} answers to the DNS name 'relay'`)
    t.same(flag(s.command!, '--backend').sort(), origins.map(([o]) => `rtsp://${o}:8554`).sort(),
      `${name} balances over both origins`)
  }
  for (const [name, s] of origins) {
    t.same(flag(s.command!, '--port'), ['8554'])
    t.same(flag(s.command!, '--host'), ['0.0.0.0'], `${name} listens on all interfaces`)
    t.same(flag(s.command!, '--metrics-port'), ['9100'])
  }
  for (const [name, s] of [...portals, ...relays, ...origins]) {
    t.equal(s.image, 'tunnelgate:dev', `${name} runs the tunnelgate image`)
    t.ok(s.cap_add?.includes('NET_BIND_SERVICE'), `${name} keeps NET_BIND_SERVICE after cap_drop ALL`)
  }
  // Portals and relays: the ops listener on the compose network with the token, the cluster secret, both
  // from the environment; only the portals' tunnel port is published, never an ops port or a relay.
  for (const [name, s] of [...portals, ...relays]) {
    t.equal(s.environment?.TUNNELGATE_OPS_HOST, '0.0.0.0', `${name}: ops listener reachable by Prometheus`)
    t.match(s.environment?.TUNNELGATE_OPS_TOKEN ?? '', /^\$\{TUNNELGATE_OPS_TOKEN:\?/,
      `${name}: ops token required from the environment`)
    t.match(s.environment?.TUNNELGATE_CLUSTER_SECRET ?? '', /^\$\{TUNNELGATE_CLUSTER_SECRET:\?/,
      `${name}: cluster secret required from the environment`)
    t.ok((s.ports ?? []).every(p => /:80$/.test(p)) &&
      (s.ports ?? []).length === (portals.some(([n]) => n === name) ? 1 : 0),
      `${name}: publishes ${JSON.stringify(s.ports ?? [])}`)
  }

  // prometheus.yml scrapes every portal and relay on its ops port with the token, every origin on its metrics port.
  const prom = parseYaml(readFileSync(PROMETHEUS, 'utf8')) as {
    scrape_configs: Array<{
      job_name: string,
      metrics_path?: string,
      authorization?: { type?: string, credentials_file?: string },
      static_configs: Array<{ targets: string[] }>
    }>
  }
  const jobOf = (target: string): (typeof prom.scrape_configs)[number] | undefined =>
    prom.scrape_configs.find(j => j.static_configs.some(c => c.targets.includes(target)))
  const opsTargets = [...portals, ...relays].map(([n]) => `${n}:9180`)
  for (const target of opsTargets) {
    const job = jobOf(target)
    t.ok(job !== undefined, `Prometheus scrapes ${target}`)
    t.same(job?.authorization, { type: 'Bearer', credentials_file: '/prometheus/ops-token' },
      `${target} with the ops token`)
  }
  for (const [n, s] of [...portals, ...relays]) t.equal(jobOf(`${n}:${flag(s.command!, '--port')[0]}`), undefined, `${n}'s public port is not scraped`)
  for (const [n, s] of origins) t.ok(jobOf(`${n}:${flag(s.command!, '--metrics-port')[0]}`) !== undefined, `Prometheus scrapes ${n}'s metrics port`)
  t.ok(prom.scrape_configs.every(j => (j.metrics_path ?? '/metrics') === '/metrics'), 'all on /metrics')
  const p = prometheus[0]![1]
  t.match(p.entrypoint?.join(' ') ?? '',
    /TUNNELGATE_OPS_TOKEN.*> \/prometheus\/ops-token && exec \/bin\/prometheus --config\.file=\/etc\/prometheus\/prometheus\.yml/,
    'the token file is written before Prometheus starts')
  t.match(p.environment?.TUNNELGATE_OPS_TOKEN ?? '', /^\$\{TUNNELGATE_OPS_TOKEN:\?/, 'Prometheus gets the same token')
})

t.test('compose.yml: Grafana provisioned with the Prometheus datasource and the tunnelgate dashboard', async (t) => {
  const compose = parseYaml(readFileSync(COMPOSE, 'utf8'),
    { merge: true }) as { services: Record<string, Service & { depends_on?: string[] }> }
  const grafana = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('grafana/grafana:') === true)
  t.equal(grafana.length, 1, 'one Grafana')
  const g = grafana[0]![1]
  t.notMatch(g.image!, /:latest$/, 'Grafana image is pinned')
  t.ok(g.depends_on?.includes('prometheus'), 'starts after Prometheus')
  t.ok(g.volumes?.includes('./grafana/provisioning:/etc/grafana/provisioning:ro'), 'mounts the provisioning directory')
  t.ok(g.volumes?.includes('./grafana/dashboards:/var/lib/grafana/dashboards:ro'), 'mounts the dashboards directory')
  const ds = parseYaml(readFileSync(`${root}docker/grafana/provisioning/datasources/prometheus.yml`,
    'utf8')) as { datasources: Array<{ uid: string, type: string, url: string }> }
  const prom = Object.entries(compose.services).find(([, s]) => s.image?.startsWith('prom/prometheus:') === true)!
  t.same(ds.datasources.map(d => [d.type, d.url]), [['prometheus', `http://${prom[0]}:9090`]],
    'datasource = the compose Prometheus')
  const prov = parseYaml(readFileSync(`${root}docker/grafana/provisioning/dashboards/tunnelgate.yml`,
    'utf8')) as { providers: Array<{ options: { path: string } }> }
  t.equal(prov.providers[0]!.options.path, '/var/lib/grafana/dashboards',
    'dashboard provider reads the mounted directory')
  const dash = JSON.parse(readFileSync(`${root}docker/grafana/dashboards/tunnelgate.json`,
    'utf8')) as {
    panels: Array<{ datasource: { uid: string }, targets: Array<{ expr: string, datasource: { uid: string } }> }>
  }
  t.ok(dash.panels.length >= 10, `${dash.panels.length} panels`)
  for (const p of dash.panels) {
    for (const q of [p.datasource, ...p.targets.map(x => x.datasource)]) {
      t.equal(q.uid, ds.datasources[0]!.uid, 'panels use the provisioned datasource')
    }
  }
})

t.test('Dockerfile: multi-stage, non-root on port 80, runs bin/tunnelgate.js', async (t) => {
  const text = readFileSync(DOCKERFILE, 'utf8')
  const froms = [...text.matchAll(/^FROM (\S+)(?: AS (\S+))?/gm)]
  t.ok(froms.length >= 2, `${froms.length} stages`)
  t.match(text, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m)
  // eslint-disable-next-line no-template-curly-in-string -- the Dockerfile's own ARG reference
  t.ok(froms.every(f => f[1] === '${NODE_IMAGE}'), 'every stage starts from node:20-bookworm-slim')
  t.match(text, /RUN npm ci --no-audit --no-fund\nCOPY tsconfig\.json[\s\S]*RUN npm run build/,
    'build stage: npm ci + npm run build')
  t.match(text, /npm ci --omit=dev/, 'runtime gets production dependencies only')
  t.match(text, /setcap cap_net_bind_service=\+ep/)
  t.match(text, /^USER node$/m, 'runs as the unprivileged node user')
  t.match(text, /^EXPOSE 80$/m)
  t.match(text, /^ENTRYPOINT \["node", ?"bin\/tunnelgate\.js"\]$/m)
  const runtime = text.slice(text.lastIndexOf('\nFROM '))
  t.notMatch(runtime, /COPY (--\S+ )*(src|test)\b/, 'no sources or tests in the runtime stage')
  for (const m of text.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)) {
    for (const src of m[1]!.split(' ')) t.ok(existsSync(`${root}${src}`), `COPY source ${src} exists`)
  }
})
