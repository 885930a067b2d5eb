/**
 * Viewer affinity on HTTP routes (src/web/http-affinity.ts): the opaque cookie
 * `<random id>.<the backend's index in the route>` (never a backend's name or address), the backend
 * a request asks for, and the viewer table (address + User-Agent until a cookie comes, last-seen
 * order, maxViewers, idle expiry, per-backend viewer counts).
 */
import t from 'tap'
import fc from 'fast-check'
import { buildConfig } from '../../../src/config/config.js'
import {
  affinityCookie, formatAffinity, newViewerId, parseAffinity, ViewerTable, wantedBackend, type Viewer
} from '../../../src/web/http-affinity.js'

const config = buildConfig([{
  httpRoutes: [{
    path: '/hls',
    backends: ['http://10.0.0.5:8080/hls', { url: 'http://10.0.0.6:8080/hls', name: 'web-b' }]
  }]
}])
const route = config.httpRoutes[0]!
const [a, b] = route.backends.map(x => x.name) as [string, string]
const ID = '0123456789abcdef0123456789abcdef'

t.test('the cookie value: <32 hex id>.<slot>, nothing else', async t => {
  t.same(parseAffinity(`${ID}.1`), { id: ID, slot: 1 })
  const bads = [undefined, '', ID, `${ID}.`, `${ID}.12345`, `${ID.toUpperCase()}.0`, `${ID.slice(1)}.0`, `${ID}0.0`,
    `${ID}.0;x`, `${ID}.-1`, '10.0.0.5:8080.0']
  for (const bad of bads) {
    t.equal(parseAffinity(bad), null, String(bad))
  }
  fc.assert(fc.property(fc.stringMatching(/^[0-9a-f]{32}$/), fc.integer({ min: 0, max: 9999 }), (id, slot) => {
    const v = parseAffinity(formatAffinity({ id, slot }))
    return v !== null && v.id === id && v.slot === slot
  }))
  const ids = new Set(Array.from({ length: 100 }, () => newViewerId()))
  t.equal(ids.size, 100, 'fresh ids differ')
  t.ok([...ids].every(id => parseAffinity(`${id}.0`) !== null), 'and parse back')
})

t.test('affinityCookie names the backend by its index in the route, and only when it changed', async t => {
  const viewer: Viewer = { backend: b, route: route.path, lastSeen: 0, cookieId: ID }
  const cookie = affinityCookie('tgv', viewer, route, null)
  t.equal(cookie, `tgv=${ID}.1; Path=/hls; HttpOnly; SameSite=Lax`)
  t.notOk(cookie!.includes('10.0.0.6') || cookie!.includes('web-b'), 'neither the address nor the name of the backend')
  t.equal(affinityCookie('tgv', viewer, route, `${ID}.1`), null, 'the request already carried it')
  t.equal(affinityCookie('tgv', viewer, route, `${ID}.0`), `tgv=${ID}.1; Path=/hls; HttpOnly; SameSite=Lax`,
    'moved to another backend')
})

t.test('wantedBackend: the viewer\'s, else the cookie\'s slot on this route', async t => {
  const viewer: Viewer = { backend: a, route: route.path, lastSeen: 0, cookieId: ID }
  t.equal(wantedBackend(viewer, { id: ID, slot: 1 }, route), a, 'the viewer this portal has seen wins')
  t.equal(wantedBackend(undefined, { id: ID, slot: 1 }, route), b, 'a cookie another portal set')
  t.equal(wantedBackend(undefined, { id: ID, slot: 7 }, route), undefined, 'a slot the route does not have')
  t.equal(wantedBackend(undefined, null, route), undefined)
})

function table (maxViewers = 10, idleMs = 1000): { viewers: ViewerTable, counts: Map<string, number> } {
  const counts = new Map<string, number>()
  const count = (backend: string, delta: number): void => { counts.set(backend, (counts.get(backend) ?? 0) + delta) }
  const viewers = new ViewerTable({ maxViewers, idleMs, count })
  return { viewers, counts }
}

t.test('a viewer is its address + User-Agent until its cookie comes, then its cookie', async t => {
  const { viewers, counts } = table()
  const first = viewers.find('/hls', null, '192.0.2.1', 'hls.js')
  t.equal(first.viewer, undefined)
  const v = viewers.touch(first.key, first.viewer, '/hls', 0, ID)
  viewers.assign(v, b)
  t.same([...counts], [[b, 1]])
  t.equal(viewers.find('/hls', null, '192.0.2.1', 'hls.js').viewer, v, 'no cookie: found by address + User-Agent')
  t.equal(viewers.find('/hls', null, '192.0.2.1', 'ffmpeg').viewer, undefined, 'another User-Agent is another viewer')
  t.equal(viewers.find('/vod', null, '192.0.2.1', 'hls.js').viewer, undefined, 'another route is another viewer')
  t.equal(viewers.find('/hls', { id: 'f'.repeat(32), slot: 1 }, '192.0.2.1', 'hls.js').viewer, undefined,
    'another id does not take it over')
  const withCookie = viewers.find('/hls', { id: ID, slot: 1 }, '192.0.2.1', 'hls.js')
  t.equal(withCookie.viewer, v, 'its own cookie takes the address key over')
  t.equal(viewers.find('/hls', null, '192.0.2.1', 'hls.js').viewer, undefined, 'the address key is free again')
  t.equal(viewers.find('/hls', { id: ID, slot: 0 }, '198.51.100.7', 'other').viewer, v,
    'from then on the cookie alone, from anywhere')
  t.equal(viewers.size, 1)
})

t.test('assign counts viewers per backend; expiry and eviction uncount them', async t => {
  const { viewers, counts } = table(2, 1000)
  const touch = (client: string, now: number): Viewer => {
    const f = viewers.find('/hls', null, client, '')
    return viewers.touch(f.key, f.viewer, '/hls', now, newViewerId())
  }
  const v1 = touch('192.0.2.1', 0)
  viewers.assign(v1, a)
  viewers.assign(v1, a)
  t.same(counts.get(a), 1, 'the same backend again counts once')
  viewers.assign(v1, b)
  t.same([counts.get(a), counts.get(b)], [0, 1], 'moved')
  const v2 = touch('192.0.2.2', 100)
  viewers.assign(v2, a)
  touch('192.0.2.1', 200)
  const v3 = touch('192.0.2.3', 300)
  t.ok(v2.gone, 'past maxViewers the longest unseen is forgotten (v1 was seen again)')
  t.notOk(v1.gone)
  t.same([counts.get(a), counts.get(b)], [0, 1])
  viewers.assign(v2, b)
  t.same(counts.get(b), 1, 'a forgotten viewer whose request was in flight moves without counting')
  viewers.assign(v3, a)
  viewers.expire(1250)
  t.ok(v1.gone, 'unseen for idleMs: forgotten')
  t.notOk(v3.gone, 'seen 950 ms ago: kept')
  t.same([counts.get(a), counts.get(b), viewers.size], [1, 0, 1])
})
