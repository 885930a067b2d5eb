/**
 * The admin API, the access log and config reload against real players: ffmpeg
 * (-rtsp_transport http) through the gateway to two embedded origins.
 *  - in-process relay, token-protected admin API: 401s, OpenAPI, tunnel list/get/kick, backend
 *    drain (new sessions avoid it), bad input (unknown ids, malformed JSON, wrong types, unknown
 *    fields, unknown routes → 4xx with TG_ERR_* codes), reload while tunnels play (a backend's
 *    capacity and a new route change in place; nothing drops; a broken file → 422, nothing changes),
 *    access log file lines with RTP packet counts and the close reason;
 *  - two local relay workers: tunnels listed across workers, kick, worker drain (new tunnels go
 *    to the other worker), backend drain reaching the workers, access lines sent to the portal;
 *  - access log size rotation; ops.token required off loopback; the old admin.host/port/token keys refused by name.
 */
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import pino from 'pino'
import { startOrigin, type OriginHandle } from '../../src/origin/index.js'
import { buildConfig, envOverrides, loadConfigFile } from '../../src/config/config.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { AccessLog } from '../../src/ops/access-log.js'
import { type AccessRecord } from '../../src/route/relay-view.js'
import { openApiDocument } from '../../src/ops/admin.js'
import { adminClient, play, stopAllPlayers, until } from '../helpers/ops.js'

const quiet = { info () {}, warn () {}, error () {} }
const TOKEN = 'test-admin-token-0123456789'
const dir = mkdtempSync(join(tmpdir(), 'tg-admin-'))
let o1: OriginHandle
let o2: OriginHandle

t.before(async () => {
  o1 = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
  o2 = await startOrigin({ port: 0, host: '127.0.0.1', logger: quiet })
})
t.teardown(async () => {
  await stopAllPlayers()
  await o1.close()
  await o2.close()
})

function yaml (o1Max: number, extraRoute: boolean, accessFile: string): string {
  return [
    'backends:',
    `  - { name: o1, url: "rtsp://127.0.0.1:${o1.port}", maxSessions: ${o1Max} }`,
    `  - { name: o2, url: "rtsp://127.0.0.1:${o2.port}" }`,
    'routes:',
    '  - { path: /, backends: [] }',
    ...(extraRoute ? ['  - { path: /cam, backends: [o2], backendPath: /live }'] : []),
    `accessLog: { file: "${accessFile}" }`,
    ''
  ].join('\n')
}

const overrides = (workers: number, token: string): Record<string, unknown> => ({
  port: 0,
  host: '127.0.0.1',
  logLevel: 'silent',
  workers,
  ops: { port: 0, token },
  admin: { enabled: true },
  status: { sampleIntervalMs: 500 }
})

async function startFromFile (file: string, workers: number, token: string): Promise<Gateway> {
  const load = (): ReturnType<typeof buildConfig> => buildConfig([loadConfigFile(file), overrides(workers, token)])
  const gw = await startGateway(load(), { loadConfig: load, logger: pino({ level: 'silent' }) })
  return gw
}

/** A GET with headers fetch() will not send (Host). */
function rawGet (
  port: number,
  path: string,
  headers: Record<string, string>
): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', d => {
        body += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

const readLines = (file: string): AccessRecord[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l) as AccessRecord)
    : []

t.test('in-process relay: auth, OpenAPI, tunnels, kick, backend drain, reload, access log', async t => {
  const file = join(dir, 'a.yml')
  const access = join(dir, 'a-access.log')
  writeFileSync(file, yaml(4, false, access))
  const gw = await startFromFile(file, 0, TOKEN)
  t.teardown(() => gw.close())
  t.ok(gw.opsPort !== gw.port, 'admin API on the ops listener, not the tunnel port')
  const api = adminClient(gw.opsPort, TOKEN)
  const noToken = adminClient(gw.opsPort)
  const wrong = adminClient(gw.opsPort, 'wrong-token-wrong-token')
  const url = (p: string): string => `rtsp://127.0.0.1:${gw.port}${p}`

  // Authentication
  for (const [name, c] of [['no token', noToken], ['wrong token', wrong]] as const) {
    const r = await c('GET', '/admin/tunnels')
    t.equal(r.status, 401, `${name}: 401`)
    t.equal(r.body.error.code, 'TG_ERR_OPS_AUTH', `${name}: coded error`)
    t.match(
      r.headers.get('www-authenticate') ?? '',
      /^Bearer realm="tunnelgate-ops", Basic realm="tunnelgate-ops"$/,
      `${name}: Bearer and Basic challenges`
    )
  }
  t.equal((await noToken('GET', '/admin/openapi.json')).status, 401, 'OpenAPI is behind the token too')
  const basic = (password: string): Record<string, string> => ({
    authorization: `Basic ${Buffer.from(`anyone:${password}`).toString('base64')}`
  })
  t.equal(
    (await fetch(`http://127.0.0.1:${gw.opsPort}/admin/relays`, { headers: basic(TOKEN) })).status,
    200,
    'the token as the password of Basic (a browser) is accepted'
  )
  t.equal(
    (await fetch(`http://127.0.0.1:${gw.opsPort}/admin/relays`, { headers: basic('wrong-token-wrong-token') })).status,
    401,
    'a wrong Basic password is not'
  )
  const errs = await gw.metrics.errorsTotal.get()
  t.ok(
    errs.values.some(v => v.labels.code === 'TG_ERR_OPS_AUTH' && v.value >= 4),
    'refusals counted in tunnelgate_errors_total'
  )

  // OpenAPI
  const doc = await api('GET', '/admin/openapi.json')
  t.equal(doc.status, 200)
  t.equal(doc.body.openapi, '3.1.0')
  t.same(Object.keys(doc.body.paths).sort(), Object.keys(openApiDocument().paths as object).sort())
  for (const p of [
    '/admin/tunnels',
    '/admin/tunnels/{id}',
    '/admin/relays',
    '/admin/relays/{id}/draining',
    '/admin/backends',
    '/admin/backends/{name}/draining',
    '/admin/reload'
  ]) t.ok(doc.body.paths[p], `documents ${p}`)
  t.ok(doc.body.paths['/admin/tunnels/{id}'].delete, 'kick is DELETE /admin/tunnels/{id}')

  // Two players; the list shows them with real traffic
  const a = play(url('/live/demo'))
  const b = play(url('/live/demo'))
  const two = await until(
    () => api('GET', '/admin/tunnels'),
    r =>
      r.body.tunnels?.length === 2 && r.body.tunnels.every((x: any) => x.rtpPacketsToClient > 20 && x.backend !== null),
    '2 playing tunnels'
  )
  for (const x of two.body.tunnels) {
    t.match(x, { transport: 'http-tunnel', client: '127.0.0.1', path: '/live/demo', relay: 'local' }, 'tunnel fields')
    t.match(x.id, /^l-[0-9a-z]+$/, 'stable id that is not the cookie')
    t.match(x.userAgent, /Lavf/, 'user agent')
    t.ok(x.bytesToClient > 1000 && x.bytesFromClient > 100 && x.ageMs >= 0)
  }
  const one = await api('GET', `/admin/tunnels/${two.body.tunnels[0].id}`)
  t.equal(one.status, 200)
  t.equal(one.body.id, two.body.tunnels[0].id, 'GET one tunnel by id')
  t.match(
    await api('GET', '/admin/tunnels/l-zzzz'),
    { status: 404, body: { error: { code: 'TG_ERR_ADMIN_NOT_FOUND' } } },
    'unknown id → 404'
  )
  t.match(
    await api('GET', '/admin/tunnels/a%20b'),
    { status: 400, body: { error: { code: 'TG_ERR_ADMIN_BAD_REQUEST' } } },
    'malformed id → 400'
  )
  t.match(
    await api('DELETE', '/admin/tunnels/l-zzzz'),
    { status: 404, body: { error: { code: 'TG_ERR_ADMIN_NOT_FOUND' } } },
    'kick of an unknown id → 404'
  )
  t.match(
    await api('GET', '/admin/nothing'),
    { status: 404, body: { error: { code: 'TG_ERR_ADMIN_NOT_FOUND' } } },
    'unknown route → 404 JSON'
  )

  // Reload while both play: o1's capacity and a new route
  const bytesBefore = Object.fromEntries(two.body.tunnels.map((x: any) => [x.id, x.bytesToClient]))
  writeFileSync(file, yaml(9, true, access))
  const rl = await api('POST', '/admin/reload')
  t.equal(rl.status, 200, 'reload accepted')
  t.same(rl.body.applied.sort(), ['backends', 'routes'], 'backends and routes applied in place')
  t.same(rl.body.restartRequired, [], 'nothing needs a restart')
  t.match(
    (await api('GET', '/admin/backends')).body.backends.find((x: any) => x.name === 'o1'),
    { maxSessions: 9 },
    'o1 capacity changed in place'
  )
  const cam = play(url('/cam/demo'))
  await until(
    () => api('GET', '/admin/tunnels'),
    r => r.body.tunnels?.some((x: any) => x.path === '/cam/demo' && x.backend === 'o2' && x.rtpPacketsToClient > 20),
    'the new route /cam → o2:/live plays'
  )
  const after = await api('GET', '/admin/tunnels')
  for (const id of Object.keys(bytesBefore)) {
    const x = after.body.tunnels.find((y: any) => y.id === id)
    t.ok(x !== undefined && x.bytesToClient > bytesBefore[id], `tunnel ${id} kept playing through the reload`)
  }
  t.equal(a.child.exitCode, null, 'player a still running')
  t.equal(b.child.exitCode, null, 'player b still running')
  writeFileSync(file, 'backends: [{ url: "http://nope" }]\n')
  const bad = await api('POST', '/admin/reload')
  t.equal(bad.status, 422, 'a broken file → 422')
  t.equal(bad.body.error.code, 'TG_ERR_CFG_INVALID')
  t.match(bad.body.error.message, /backends\[0\]\.url/, 'the message names the bad key')
  t.match(
    (await api('GET', '/admin/backends')).body.backends.find((x: any) => x.name === 'o1'),
    { maxSessions: 9 },
    'running config unchanged'
  )
  writeFileSync(file, yaml(9, true, access))

  // Backend drain
  for (const [body, raw, why] of [
    [undefined, '{draining', 'malformed JSON'],
    [{ draining: 'yes' }, undefined, 'wrong type'],
    [{ draining: true, extra: 1 }, undefined, 'unknown field'],
    [{}, undefined, 'missing field']
  ] as const) {
    const r = await api('PUT', '/admin/backends/o1/draining', body, raw)
    t.equal(r.status, 400, `${why} → 400`)
    t.equal(r.body.error.code, 'TG_ERR_ADMIN_BAD_REQUEST', `${why}: coded`)
  }
  t.match(
    await api('PUT', '/admin/backends/nope/draining', { draining: true }),
    { status: 404, body: { error: { code: 'TG_ERR_ADMIN_NOT_FOUND' } } },
    'unknown backend → 404'
  )
  const dr = await api('PUT', '/admin/backends/o1/draining', { draining: true })
  t.match(dr, { status: 200, body: { name: 'o1', draining: true } }, 'o1 draining')
  const c1 = play(url('/live/demo'))
  const c2 = play(url('/live/demo'))
  const list = await until(
    () => api('GET', '/admin/tunnels'),
    r => r.body.tunnels?.filter((x: any) => x.path === '/live/demo' && x.rtpPacketsToClient > 0).length === 4,
    '4 tunnels on /live/demo'
  )
  const newest = list.body.tunnels
    .filter((x: any) => x.path === '/live/demo')
    .sort((x: any, y: any) => y.startedAt - x.startedAt)
    .slice(0, 2)
  t.same(newest.map((x: any) => x.backend), ['o2', 'o2'], 'new sessions avoid the drained backend')
  t.match(
    await api('PUT', '/admin/backends/o1/draining', { draining: false }),
    { status: 200, body: { draining: false } },
    'undrained'
  )
  t.match(
    await api('GET', '/admin/relays'),
    { status: 200, body: { relays: [{ id: 'local', kind: 'in-process', up: true, tunnels: 5 }] } },
    'the in-process relay'
  )
  t.match(await api('PUT', '/admin/relays/w7/draining', { draining: true }), { status: 404 }, 'unknown relay → 404')

  // Kick
  const victim = list.body.tunnels.find(
    (x: any) => x.path === '/live/demo' && x.startedAt === Math.min(...list.body.tunnels.map((y: any) => y.startedAt))
  )
  t.match(await api('DELETE', `/admin/tunnels/${victim.id}`), { status: 200, body: { kicked: victim.id } }, 'kicked')
  await until(
    () => api('GET', '/admin/tunnels'),
    r => r.body.tunnels.length === 4 && !r.body.tunnels.some((x: any) => x.id === victim.id),
    'kicked tunnel gone'
  )
  await until(async () => [a, b].filter(p => p.child.exitCode !== null).length, n => n === 1, 'the kicked player ended')

  // Access log: one line per finished tunnel. The drain step's two players only had to start
  // playing; let every tunnel carry some media first (a loaded CI machine is slow to get there).
  await until(
    () => api('GET', '/admin/tunnels'),
    r => r.body.tunnels?.length === 4 && r.body.tunnels.every((x: any) => x.rtpPacketsToClient > 20),
    'every remaining tunnel past 20 RTP packets'
  )
  for (const p of [a, b, cam, c1, c2]) await p.stop()
  await until(() => api('GET', '/admin/tunnels'), r => r.body.tunnels.length === 0, 'all tunnels closed')
  await gw.ops.accessLog.flush()
  const lines = await until(async () => readLines(access), l => l.length === 5, '5 access lines')
  const kicked = lines.find(l => l.id === victim.id)!
  t.match(
    kicked,
    { reason: 'kicked', path: '/live/demo', client: '127.0.0.1', relay: 'local', transport: 'http-tunnel', user: '-' },
    "the kicked tunnel's line"
  )
  for (const l of lines) {
    t.ok(
      l.rtpPacketsToClient > 20 && l.bytesToClient > 1000 && l.bytesFromClient > 0 && l.durationMs > 0,
      `${l.id}: packets, bytes, duration`
    )
    t.ok(
      !Number.isNaN(Date.parse(l.start)) && l.backend !== null && /Lavf/.test(l.userAgent),
      `${l.id}: start, backend, user agent`
    )
  }
  t.equal(lines.filter(l => l.path === '/cam/demo' && l.backend === 'o2').length, 1, 'the /cam line names backend o2')
})

t.test(
  'two relay workers: list across workers, kick, worker drain, backend drain, access lines via the portal',
  async t => {
    const file = join(dir, 'b.yml')
    const access = join(dir, 'b-access.log')
    writeFileSync(file, yaml(0, false, access))
    const gw = await startFromFile(file, 2, '')
    t.teardown(() => gw.close())
    const api = adminClient(gw.opsPort)
    const url = `rtsp://127.0.0.1:${gw.port}/live/demo`
    // No token (loopback): a request naming another host, or from another site's page, is refused.
    const other = await rawGet(gw.opsPort, '/admin/relays', { host: 'rebound.example.net:9180' })
    t.match(
      { status: other.status, body: JSON.parse(other.body) },
      { status: 403, body: { error: { code: 'TG_ERR_OPS_AUTH' } } },
      'a non-loopback Host (DNS rebinding) → 403'
    )
    t.equal(
      (await rawGet(gw.opsPort, '/admin/relays', { host: `localhost:${gw.opsPort}` })).status,
      200,
      'Host: localhost is served'
    )
    const site = await fetch(`http://127.0.0.1:${gw.opsPort}/admin/reload`, {
      method: 'POST',
      headers: { origin: 'https://evil.example.net' }
    })
    t.equal(site.status, 403, "a request from another site's page → 403, nothing reloaded")
    t.equal(
      (
        await fetch(`http://127.0.0.1:${gw.opsPort}/admin/relays`, {
          headers: { origin: `http://127.0.0.1:${gw.opsPort}` }
        })
      ).status,
      200,
      "the listener's own page (same origin) is served"
    )
    t.match(await api('GET', '/admin/relays'), {
      status: 200,
      body: {
        relays: [
          { id: 'w0', kind: 'worker', up: true, draining: false },
          { id: 'w1', kind: 'worker', up: true, draining: false }
        ]
      }
    })
    t.match(
      await api('PUT', '/admin/relays/w0/draining', { draining: true }),
      { status: 200, body: { id: 'w0', draining: true } },
      'w0 draining'
    )
    t.match(await api('PUT', '/admin/relays/w9/draining', { draining: true }), { status: 404 }, 'no worker 9 → 404')
    t.match(
      await api('PUT', '/admin/backends/o1/draining', { draining: true }),
      { status: 200 },
      'o1 drained on every worker'
    )
    const ps = [play(url), play(url), play(url)]
    const list = await until(
      () => api('GET', '/admin/tunnels'),
      r => r.body.tunnels?.length === 3 && r.body.tunnels.every((x: any) => x.rtpPacketsToClient > 20),
      '3 playing tunnels'
    )
    t.same(
      list.body.tunnels.map((x: any) => x.relay),
      ['w1', 'w1', 'w1'],
      'new tunnels avoid the draining worker'
    )
    t.same(
      list.body.tunnels.map((x: any) => x.backend),
      ['o2', 'o2', 'o2'],
      'and the drained backend'
    )
    for (const x of list.body.tunnels) t.match(x.id, /^w1\.0-[0-9a-z]+$/, 'worker tunnel id')
    const relays = await api('GET', '/admin/relays')
    t.match(
      relays.body.relays,
      [
        { id: 'w0', tunnels: 0 },
        { id: 'w1', tunnels: 3 }
      ],
      'per-worker tunnel counts'
    )
    const victim = list.body.tunnels[1].id
    t.match(
      await api('DELETE', `/admin/tunnels/${victim}`),
      { status: 200, body: { kicked: victim } },
      'kick in a worker'
    )
    await until(
      () => api('GET', '/admin/tunnels'),
      r => r.body.tunnels.length === 2,
      'kicked tunnel gone'
    )
    t.match(await api('DELETE', '/admin/tunnels/w0.0-1'), { status: 404 }, 'unknown worker tunnel → 404')
    t.match(await api('PUT', '/admin/relays/w0/draining', { draining: false }), {
      status: 200,
      body: { draining: false }
    })
    for (const p of ps) await p.stop()
    await until(
      () => api('GET', '/admin/tunnels'),
      r => r.body.tunnels.length === 0,
      'all closed'
    )
    const lines = await until(
      async () => {
        await gw.ops.accessLog.flush()
        return readLines(access)
      },
      l => l.length === 3,
      '3 access lines written by the portal'
    )
    t.same(
      lines.map(l => l.relay),
      ['w1', 'w1', 'w1']
    )
    t.equal(lines.filter(l => l.reason === 'kicked').length, 1, 'one kicked')
  }
)

t.test('access log rotates by size and keeps N files', async t => {
  const file = join(dir, 'rot.log')
  const log = new AccessLog({ enabled: true, file, maxBytes: 2048, keep: 2 }, pino({ level: 'silent' }))
  const rec: AccessRecord = {
    id: 'l-1',
    transport: 'http-tunnel',
    client: '127.0.0.1',
    userAgent: 'x'.repeat(200),
    path: '/a',
    backend: 'o1',
    relay: 'local',
    start: new Date().toISOString(),
    durationMs: 1,
    bytesToClient: 1,
    bytesFromClient: 1,
    rtpPacketsToClient: 1,
    rtpPacketsFromClient: 0,
    reason: 'client-closed',
    outcome: 'ok',
    user: '-'
  }
  for (let i = 0; i < 40; i++) { log.write({ ...rec, id: `l-${i}` }); if (i % 3 === 0) await log.flush() }
  await log.close()
  t.ok(existsSync(file) && existsSync(`${file}.1`) && existsSync(`${file}.2`), 'file, file.1, file.2')
  t.notOk(existsSync(`${file}.3`), 'no file.3 (keep: 2)')
  for (const f of [file, `${file}.1`, `${file}.2`]) t.ok(readFileSync(f).length <= 2048, `${f} within maxBytes`)
  const last = readLines(file)
  t.equal(last[last.length - 1]!.id, 'l-39', 'newest line in the live file')
})

t.test('ops.token is required off loopback; the old admin.* listener keys are refused by name', async t => {
  t.throws(() => buildConfig([{ ops: { host: '0.0.0.0' } }]), { code: 'TG_ERR_CFG_INVALID', message: /ops\.token/ })
  t.throws(() => buildConfig([{ ops: { host: '127.0.0.1', token: 'short' } }]), {
    code: 'TG_ERR_CFG_INVALID',
    message: /ops\.token.*16/
  })
  t.equal(buildConfig([{ ops: { host: '0.0.0.0', token: TOKEN } }]).ops.token, TOKEN)
  t.equal(
    buildConfig([{ admin: { enabled: true } }]).ops.host,
    '127.0.0.1',
    'loopback without a token is allowed (the default)'
  )
  for (const [key, to] of [['host', 'ops.host'], ['port', 'ops.port'], ['token', 'ops.token']] as const) {
    t.throws(
      () => buildConfig([{ admin: { enabled: true, [key]: key === 'port' ? 9181 : 'x' } }]),
      { code: 'TG_ERR_CFG_INVALID', message: new RegExp(`'admin\\.${key}' has moved to '${to.replace('.', '\\.')}`) },
      `admin.${key} → ${to}`
    )
  }
  t.throws(
    () => buildConfig([envOverrides({ TUNNELGATE_ADMIN_TOKEN: TOKEN })]),
    { message: /TUNNELGATE_OPS_TOKEN/ },
    'the old environment variable names the new one'
  )
  t.equal(
    buildConfig([
      envOverrides({ TUNNELGATE_OPS_TOKEN: TOKEN, TUNNELGATE_OPS_HOST: '0.0.0.0', TUNNELGATE_OPS_PORT: '9190' })
    ]).ops.port,
    9190
  )
})
