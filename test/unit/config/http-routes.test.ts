/**
 * The HTTP pass-through routes' settings (src/config/http-routes.ts): httpRoutes and httpProxy
 * validation, and the health-probe and load-tie settings (healthPath, rtspBackend, httpProxy.probe*).
 */
import t from 'tap'
import { buildConfig } from '../../../src/config/config.js'

t.test('httpRoutes / httpProxy validation', async t => {
  const c = buildConfig([{
    httpRoutes: [{
      path: '/hls/',
      backends: ['http://10.0.0.5:8080/hls/', { url: 'http://[::1]/x', name: 'v6', weight: 3 }],
      maxInFlight: 5
    }]
  }])
  t.same(c.httpRoutes[0], {
    path: '/hls',
    backends: [
      {
        name: '10.0.0.5:8080',
        url: 'http://10.0.0.5:8080/hls',
        host: '10.0.0.5',
        port: 8080,
        basePath: '/hls',
        weight: 1,
        healthPath: '/hls/',
        rtspBackend: ''
      },
      {
        name: 'v6',
        url: 'http://[::1]:80/x',
        host: '::1',
        port: 80,
        basePath: '/x',
        weight: 3,
        healthPath: '/x/',
        rtspBackend: ''
      }
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
    [{ httpRoutes: [{ path: '/a', backends: ['http://a:1'] }, { path: '/a/', backends: ['http://a:1'] }] },
      /duplicates the route/],
    [{ httpRoutes: [{ path: '/a', backends: ['http://a:1', 'http://a:1'] }] }, /duplicates the backend/],
    [{
      httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', name: 'x' }] }, {
        path: '/b',
        backends: [{ url: 'http://b:1', name: 'x' }]
      }]
    },
    /another route uses it/],
    [{ httpRoutes: [{ path: '/a', backends: ['http://a:1'], extra: 1 }] },
      /httpRoutes\[0\]\.extra' is not a known setting/],
    [{ httpProxy: { retries: 11 } }, /httpProxy\.retries' must be between 0 and 10/],
    [{ httpProxy: { cookie: 'a b' } }, /httpProxy\.cookie/],
    [{ httpProxy: { nope: 1 } }, /httpProxy\.nope' is not a known setting/]
  ]
  for (const [layer, re] of bad) {
    t.throws(() => buildConfig([layer as Record<string, unknown>]), re, JSON.stringify(layer))
  }
})

t.test('healthPath, rtspBackend and httpProxy.probe* settings', async t => {
  const c = buildConfig([{
    backends: [{ name: 'origin-a', url: 'rtsp://10.0.0.5:554' }],
    httpRoutes: [{
      path: '/hls',
      backends: [{ url: 'http://10.0.0.5:8080/hls', rtspBackend: 'origin-a', healthPath: '/health?x=1' },
        'http://10.0.0.6:8080', 'http://10.0.0.7:8080/a/b']
    }],
    httpProxy: { probeIntervalMs: 500, probeRise: 3, probeFall: 2, probeTimeoutMs: 700 }
  }])
  const [a, b, d] = c.httpRoutes[0]!.backends
  t.equal(a!.rtspBackend, 'origin-a')
  t.equal(a!.healthPath, '/health?x=1', 'explicit healthPath kept')
  t.equal(b!.healthPath, '/', 'root base: probe /')
  t.equal(b!.rtspBackend, '', 'untied by default')
  t.equal(d!.healthPath, '/a/b/', 'default: the base path')
  t.has(c.httpProxy, { probeIntervalMs: 500, probeRise: 3, probeFall: 2, probeTimeoutMs: 700 })
  t.has(buildConfig([{}]).httpProxy, { probeIntervalMs: 2000, probeTimeoutMs: 2000, probeRise: 2, probeFall: 1 },
    'defaults')
  const bad: Array<[unknown, RegExp]> = [
    [{
      backends: [{ name: 'origin-a', url: 'rtsp://h:554' }],
      httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', rtspBackend: 'origin-z' }] }]
    },
    /rtspBackend' names no configured RTSP backend \('origin-z'; backends\[\]\.name: origin-a\)/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', rtspBackend: 3 }] }] },
      /rtspBackend' must be the name/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', healthPath: 'health' }] }] },
      /healthPath' must be a path starting with '\/'/],
    [{ httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', healthPath: '/x/../y' }] }] },
      /healthPath' must be a canonical path/],
    [{ httpProxy: { probeIntervalMs: -1 } }, /httpProxy\.probeIntervalMs' must be between 0/],
    [{ httpProxy: { probeTimeoutMs: 0 } }, /httpProxy\.probeTimeoutMs' must be between 1/],
    [{ httpProxy: { probeRise: 0 } }, /httpProxy\.probeRise' must be between 1 and 100/],
    [{ httpProxy: { probeFall: 101 } }, /httpProxy\.probeFall' must be between 1 and 100/]
  ]
  for (const [layer, re] of bad) {
    t.throws(() => buildConfig([layer as Record<string, unknown>]), re, JSON.stringify(layer))
  }
})
