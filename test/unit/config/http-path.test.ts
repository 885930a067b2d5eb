import t from 'tap'
import { encodeSegment, matchRoute, normalisePath } from '../../../src/config/http-path.js'

t.test('normalisePath', async t => {
  const ok = (target: string): string => {
    const r = normalisePath(target)
    if (!r.ok) throw new Error(`${target}: ${r.reason}`)
    return r.path + r.query
  }
  t.equal(ok('/hls/stream.m3u8'), '/hls/stream.m3u8')
  t.equal(ok('//hls///a/./b/../c.ts?x=1&y=%2f'), '/hls/a/c.ts?x=1&y=%2f',
    "'//', '.', '..' resolved; the query is kept as sent")
  t.equal(ok('/hls/%61%20b.ts'), '/hls/a b.ts', 'escapes decoded')
  t.equal(ok('/hls/sub/'), '/hls/sub/', 'trailing slash kept')
  t.equal(ok('/hls/x/..'), '/hls/', "a final '..' leaves a directory")
  for (const bad of ['/hls/../../etc/passwd', '/hls/%2e%2e/%2e%2e/etc', '/hls/..%2f..%2fetc', '/hls/%2F', '/hls/%5c',
    '/hls/%00', '/hls/\\..\\', '/hls/%zz', '/hls/%E0%A4%A', 'http://evil/hls/x', 'hls/x', '*', '/hls/%0d%0aX: y',
    '/a#frag', '/../x']) {
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
