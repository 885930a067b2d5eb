/**
 * The one RTSP URL parser (src/tunnel/codec/rtsp-url.ts): every authority form is parsed or refused
 * with a reason, never thrown on, and the URL mapper built on it accepts whatever the parser accepts.
 */
import t from 'tap'
import fc from 'fast-check'
import {
  canonicalPath, canonicalUri, isIpv6Literal, parseRtspUrl, withoutQueryParams
} from '../../../../src/tunnel/codec/rtsp-url.js'
import { UrlMapper } from '../../../../src/tunnel/codec/url-rewrite.js'

t.test('authority forms', async t => {
  const ok: Array<[string, { host: string, port: number, path: string, query?: string, scheme?: string }]> = [
    ['rtsp://h/demo', { host: 'h', port: 554, path: '/demo' }],
    ['RTSP://H.Example:8554/a?b=c#f', { host: 'h.example', port: 8554, path: '/a', query: '?b=c' }],
    ['rtsps://HOST/demo', { host: 'host', port: 322, path: '/demo', scheme: 'rtsps' }],
    ['rtsp://[::1]:8554/x', { host: '::1', port: 8554, path: '/x' }],
    ['rtsp://[fe80::1%25eth0]/x', { host: 'fe80::1%25eth0', port: 554, path: '/x' }],
    ['rtsp://[::ffff:10.0.0.1]/x', { host: '::ffff:10.0.0.1', port: 554, path: '/x' }],
    ['rtsp://user:pa%20ss@10.0.0.5:554/x', { host: '10.0.0.5', port: 554, path: '/x' }],
    ['rtsp://h:/x', { host: 'h', port: 554, path: '/x' }],
    ['rtsp://h', { host: 'h', port: 554, path: '' }],
    ['rtspt://h:0/x', { host: 'h', port: 0, path: '/x', scheme: 'rtspt' }]
  ]
  for (const [url, want] of ok) {
    const r = parseRtspUrl(url)
    t.ok(r.ok, url)
    if (r.ok) t.match(r.url, want, url)
  }
  const bad = ['rtsp://h:2r080/demo', 'rtsp://h:80:90/demo', 'rtsp://[::1/demo', 'rtsp://[::1]x/demo',
    'rtsp://[zz::1]/x', 'rtsp://h:65536/x', 'rtsp://h:123456/x', 'rtsp:///x', 'rtsp://:80/x', 'http://h/x', 'rtsp:/h/x',
    'h/x', '*',
    'rtsp://h h/x', 'rtsp://h/x y', 'rtsp://h/\x00', 'rtsp://ho%zzst/x', 'rtsp://u@v@[::1/x',
    `rtsp://h/${'a'.repeat(9000)}`]
  for (const url of bad) t.match(parseRtspUrl(url), { ok: false, reason: String }, `refused: ${JSON.stringify(url.slice(0, 40))}`)
})

t.test('IPv6 literals', async t => {
  for (const a of ['::', '::1', '1::', '1:2:3:4:5:6:7:8', '1::8', '1:2:3:4:5:6:7::', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4',
    'fe80::1%25en0']) t.ok(isIpv6Literal(a), a)
  for (const a of [':', ':1', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', '::1.2.3', '::256.1.1.1',
    '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0', 'g::1']) t.notOk(isIpv6Literal(a), a)
})

t.test('canonical paths: one spelling per stream', async t => {
  for (const p of ['/live/demo', '/live//demo', '/live/./demo', '/live/%64emo', '//live///demo', '/./live/demo',
    '/live/demo/.']) {
    t.equal(canonicalPath(p)?.replace(/\/$/, ''), '/live/demo', p)
  }
  t.equal(canonicalPath('/live/demo/'), '/live/demo/', 'a trailing slash is kept')
  t.equal(canonicalPath('/a%2fb'), '/a%2Fb', 'an encoded slash stays encoded (upper-cased)')
  t.equal(canonicalPath(''), '/')
  for (const p of ['/a/../b', '/..', '/a/%2e%2e/b', '/a/.%2E/b', '/%zz', '/a%2']) t.equal(canonicalPath(p), null, p)
  t.same(canonicalUri('rtsp://GW:80/live//demo?token=s3cret&x=1#frag', ['token']),
    { ok: true, uri: 'rtsp://GW:80/live/demo?x=1' }, 'the gateway token and the fragment dropped')
  t.same(canonicalUri('/live/./demo?sessioncookie=abc', ['sessioncookie']), { ok: true, uri: '/live/demo' })
  t.match(canonicalUri('rtsp://h:2r080/demo', []), { ok: false })
  t.equal(withoutQueryParams('?a=1&Token=2&b', ['token']), '?a=1&b')
})

t.test('property: never throws; canonical forms are fixed points; the mapper accepts what the parser ' +
  'accepts', async t => {
  const part = fc.constantFrom('rtsp://', 'rtsps://', 'RTSP://', '[', ']', ':', '::1', '@', '/', '//', '.', '..', '%',
    '%2e', '%41', '?', '#', 'h', '80', '65536', 'a b', '\x00')
  fc.assert(fc.property(fc.array(part, { maxLength: 12 }), fc.string({ maxLength: 8 }), (parts, extra) => {
    const url = parts.join('') + extra
    const r = parseRtspUrl(url)
    if (r.ok) {
      // A base built from what the parser accepted is one the mapper takes.
      const base = `${r.url.scheme}://${r.url.authority}`
      new UrlMapper({ publicBase: base, backendBase: 'rtsp://10.0.0.5:554' }).toBackend(url)
    }
    const c = canonicalUri(url, ['token'])
    if (c.ok) { const again = canonicalUri(c.uri, ['token']); if (!again.ok || again.uri !== c.uri) return false }
    const p = canonicalPath('/' + url)
    return p === null || canonicalPath(p) === p
  }), { seed: 554, numRuns: 5000 })
  t.pass('held')
})
