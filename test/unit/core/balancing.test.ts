import t from 'tap'
import { chooseBackend, type BackendSnapshot } from '../../../src/balancer/policy.js'
import { matchesPrefix, pathOfUrl, resolveRoute } from '../../../src/backends/routes.js'

const snap = (name: string, sessions: number, extra: Partial<BackendSnapshot> = {}): BackendSnapshot =>
  ({ name, sessions, maxSessions: 0, weight: 1, healthy: true, ...extra })

/** A deterministic sequence of "random" numbers. */
const seq = (...xs: number[]): () => number => { let i = 0; return () => xs[i++ % xs.length]! }

t.test('power of two choices picks the less loaded of two draws', async t => {
  const list = [snap('a', 10), snap('b', 2), snap('c', 5)]
  // draws a (0.1 of 3), then c (0.6 of the remaining 2): c has the lower load
  t.same(chooseBackend(list, seq(0.1, 0.6)), { backend: 'c' })
  t.same(chooseBackend(list, seq(0.1, 0.2)), { backend: 'b' })
  t.same(chooseBackend([snap('a', 1), snap('b', 3)], seq(0.9, 0.1)), { backend: 'a' })
  t.same(chooseBackend([snap('a', 1)], Math.random), { backend: 'a' })
})

t.test('unhealthy, draining and full backends are skipped', async t => {
  t.same(chooseBackend([snap('a', 0, { healthy: false }), snap('b', 9)]), { backend: 'b' })
  t.same(chooseBackend([snap('a', 0, { draining: true }), snap('b', 9)]), { backend: 'b' })
  t.same(chooseBackend([snap('a', 2, { maxSessions: 2 }), snap('b', 9)]), { backend: 'b' })
  t.same(chooseBackend([snap('a', 2, { maxSessions: 2 })]), { backend: null, reason: 'all-full' })
  t.same(chooseBackend([snap('a', 0, { healthy: false })]), { backend: null, reason: 'none-healthy' })
  t.same(chooseBackend([]), { backend: null, reason: 'none-healthy' })
})

t.test('load spreads by weight over many choices', async t => {
  const counts = new Map<string, number>([['a', 0], ['b', 0]])
  const list = [snap('a', 0, { weight: 1 }), snap('b', 0, { weight: 3 })]
  for (let i = 0; i < 4000; i++) {
    const c = chooseBackend(list)
    if (c.backend === null) throw new Error('no choice')
    counts.set(c.backend, counts.get(c.backend)! + 1)
    list.find(b => b.name === c.backend)!.sessions++
  }
  const ratio = counts.get('b')! / counts.get('a')!
  t.ok(ratio > 2.7 && ratio < 3.3, `b/a = ${ratio.toFixed(2)} ≈ 3`)
})

t.test('routes: longest prefix on a segment boundary', async t => {
  const routes = [{ path: '/', backends: [] }, { path: '/cams', backends: ['x'], backendPath: '/live' }, { path: '/cams/hd/', backends: ['y'] }]
  t.equal(resolveRoute(routes, '/demo')!.route.path, '/')
  t.same(resolveRoute(routes, '/cams/1')!.backendPath, '/live/1')
  t.equal(resolveRoute(routes, '/camsX')!.route.path, '/')
  t.equal(resolveRoute(routes, '/cams/hd/2')!.route.path, '/cams/hd/')
  t.equal(resolveRoute([{ path: '/only', backends: [] }], '/other'), null)
  t.ok(matchesPrefix('/a', '/'))
  t.equal(pathOfUrl('rtsp://gw:80/demo/trackID=1?x=1'), '/demo/trackID=1')
  t.equal(pathOfUrl('rtsp://gw'), '/')
  t.equal(pathOfUrl('/x'), '/x')
  t.equal(pathOfUrl('http://gw/x'), null)
  t.equal(pathOfUrl('rtsp://gw/a/%2e%2e/etc'), null)
  t.equal(pathOfUrl('rtsp://gw/a/../etc'), null)
  t.equal(pathOfUrl('rtsp://gw/%zz'), null)
})
