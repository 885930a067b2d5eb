import t from 'tap'
import { matchesPrefix, pathOfUrl, resolveRoute } from '../../../src/backends/routes.js'

t.test('routes: longest prefix on a segment boundary', async t => {
  const routes = [{ path: '/', backends: [] }, { path: '/cams', backends: ['x'], backendPath: '/live' }, {
    path: '/cams/hd/',
    backends: ['y']
  }]
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
