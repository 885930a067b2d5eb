import t from 'tap'
import { buildConfig } from '../../../src/config/config.js'
import { encodeSegment, matchRoute, normalisePath } from '../../../src/config/http-path.js'

t.test('normalisePath', async t => {
  const ok = (target: string): string => { const r = normalisePath(target); if (!r.ok) throw new Error(`${target}: ${r.reason}`); return r.path + r.query }
  t.equal(ok('/hls/stream.m3u8'), '/hls/stream.m3u8')
  t.equal(ok('//hls///a/./b/../c.ts?x=1&y=%2f'), '/hls/a/c.ts?x=1&y=%2f', "'//', '.', '..' resolved; the query is kept as sent")
  t.equal(ok('/hls/%61%20b.ts'), '/hls/a b.ts', 'escapes decoded')
  t.equal(ok('/hls/sub/'), '/hls/sub/', 'trailing slash kept')
  t.equal(ok('/hls/x/..'), '/hls/', "a final '..' leaves a directory")
  for (const bad of ['/hls/../../etc/passwd', '/hls/%2e%2e/%2e%2e/etc', '/hls/..%2f..%2fetc', '/hls/%2F', '/hls/%5c', '/hls/%00', '/hls/\\..\\', '/hls/%zz', '/hls/%E0%A4%A', 'http://evil/hls/x', 'hls/x', '*', '/hls/%0d%0aX: y', '/a#frag', '/../x']) {
    t.notOk(normalisePath(bad).ok, `refused: ${JSON.stringify(bad)}`)
  }
  t.equal(encodeSegment('a b/ü?#%'), 'a%20b%2F%C3%BC%3F%23%25')
  t.equal(encodeSegment("seg-1_x.~!$&'()*+,;=:@"), "seg-1_x.~!$&'()*+,;=:@")
})

t.test('matchRoute: longest prefix on a segment boundary', async t => {
  const routes = [{ path: '/hls' }, { path: '/hls/live' }, { path: '/media' }]
  t.same(matchRoute(routes, ['hls', 'live', 'a.ts']), { route: { path: '/hls/live' }, rest: ['a.ts'] })
  t.same(matchRoute(routes, ['hls', 'a.ts']), { route: { path: '/hls' }, rest: ['a.ts'] })
  t.same(matchRoute(routes, ['hls']), { route: { path: '/hls' }, rest: [] })
  t.equal(matchRoute(routes, ['hlsx', 'a.ts']), null)
  t.equal(matchRoute(routes, ['etc', 'passwd']), null)
})

t.test('httpRoutes / httpProxy validation', async t => {
  const c = buildConfig([{ httpRoutes: [{ path: '/hls/', backends: ['http://10.0.0.5:8080/hls/', { url: 'http://[::1]/x', name: 'v6', weight: 3 }], maxInFlight: 5 }] }])
  t.same(c.httpRoutes[0], {
    path: '/hls',
    backends: [
      { name: '10.0.0.5:8080', url: 'http://10.0.0.5:8080/hls', host: '10.0.0.5', port: 8080, basePath: '/hls', weight: 1, healthPath: '/hls/', rtspBackend: '' },
      { name: 'v6', url: 'http://[::1]:80/x', host: '::1', port: 80, basePath: '/x', weight: 3, healthPath: '/x/', rtspBackend: '' }
    ],
    auth: true,
    maxInFlight: 5
  })
  const bad: Array<[unknown, RegExp]> = [
    [{ httpRoutes: [{ path: '/', backends: ['http://a:1'] }] }, /httpRoutes\[0\]\.path' must not be '\/'/],
    [{ httpRoutes: [{ path: '/metrics', backends: ['http://a:1'] }] }, /must not take '\/metrics'/],
    [{ httpRoutes: [{ path: '/a/../b', backends: ['http://a:1'] }] }, /canonical/],
    [{ httpRoutes: [{ path: '/a', backends: [] }] }, /backends' must be a non-empty list/],
    [{ httpRoutes: [{ path: '/a', backends: ['https://a:1'] }] }, /must be an http:\/\/ URL/],
    [{ httpRoutes: [{ path: '/a', backends: ['http://u:p@a:1'] }] }, /without credentials/],
    [{ httpRoutes: [{ path: '/a', backends: ['http://a:1'] }, { path: '/a/', backends: ['http://a:1'] }] }, /duplicates the route/],
    [{ httpRoutes: [{ path: '/a', backends: ['http://a:1', 'http://a:1'] }] }, /duplicates the backend/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', name: 'x' }] }, { path: '/b', backends: [{ url: 'http://b:1', name: 'x' }] }] }, /another route uses it/],
    [{ httpRoutes: [{ path: '/a', backends: ['http://a:1'], extra: 1 }] }, /httpRoutes\[0\]\.extra' is not a known setting/],
    [{ httpProxy: { retries: 11 } }, /httpProxy\.retries' must be between 0 and 10/],
    [{ httpProxy: { cookie: 'a b' } }, /httpProxy\.cookie/],
    [{ httpProxy: { nope: 1 } }, /httpProxy\.nope' is not a known setting/]
  ]
  for (const [layer, re] of bad) t.throws(() => buildConfig([layer as Record<string, unknown>]), re, JSON.stringify(layer))
})
