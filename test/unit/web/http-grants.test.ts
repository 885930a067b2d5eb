/**
 * Token grants on HTTP routes (src/web/http-grants.ts): the signed grant cookie a valid token earns
 * (path, life, flags) and the check that lets a later request through on it: its path only, until
 * it expires, with the secrets that signed it (old secrets too while configured), a few cookies at most.
 */
import t from 'tap'
import fc from 'fast-check'
import { signGrant } from '../../../src/tunnel/codec/access.js'
import { grantCookie, grantCovers, MAX_GRANT_COOKIES } from '../../../src/web/http-grants.js'

const NOW = 1_800_000_000_000
const base = {
  name: 'tgg', secret: 's3cret', tokenPath: '/hls/cam 1/', tokenExpMs: NOW + 90_500, nowMs: NOW, secure: false
}
const valueOf = (setCookie: string): string => /^tgg=([^;]+);/.exec(setCookie)![1]!

t.test('the Set-Cookie of a grant', async t => {
  const c = grantCookie(base)
  t.match(c, /^tgg=g1\.\d+\.[\w-]+\.[\w-]+; Path=\/hls\/cam%201; Max-Age=90; HttpOnly; SameSite=Strict$/,
    'path of the token, percent-encoded, no trailing slash')
  t.match(grantCookie({ ...base, secure: true }), /; SameSite=Strict; Secure$/, 'Secure over TLS')
  t.match(grantCookie({ ...base, tokenPath: '/' }), /; Path=\/; /)
  t.match(grantCookie({ ...base, tokenExpMs: NOW + 200 }), /; Max-Age=1; /, 'at least 1 s')
  t.equal(valueOf(c), signGrant('s3cret', '/hls/cam 1/', (NOW + 90_500) / 1000), 'the value is the signed grant')
})

t.test('grantCovers: its path, its life, its secrets', async t => {
  const header = `other=1; tgg=${valueOf(grantCookie(base))}`
  t.ok(grantCovers(header, 'tgg', ['s3cret'], '/hls/cam 1/index.m3u8', NOW))
  t.ok(grantCovers(header, 'tgg', ['s3cret'], '/hls/cam 1', NOW), 'the path itself')
  t.notOk(grantCovers(header, 'tgg', ['s3cret'], '/hls/cam 10/a.ts', NOW), 'not a sibling that shares a prefix')
  t.notOk(grantCovers(header, 'tgg', ['s3cret'], '/vod/a.mp4', NOW), 'not another path')
  t.notOk(grantCovers(header, 'tgg', ['s3cret'], '/hls/cam 1/a.ts', NOW + 91_000), 'not once expired')
  t.notOk(grantCovers(header, 'tgg', ['other'], '/hls/cam 1/a.ts', NOW), 'not with another secret')
  t.ok(grantCovers(header, 'tgg', ['new', 's3cret'], '/hls/cam 1/a.ts', NOW), 'an older secret still configured')
  t.notOk(grantCovers(header, 'grant', ['s3cret'], '/hls/cam 1/a.ts', NOW), 'under another cookie name')
  t.notOk(grantCovers(undefined, 'tgg', ['s3cret'], '/hls/cam 1/a.ts', NOW))
  const token = `tgg=${signGrant('s3cret', '/hls', (NOW + 1000) / 1000).replace(/^g1/, 'tg1')}`
  t.notOk(grantCovers(token, 'tgg', ['s3cret'], '/hls/a.ts', NOW), 'a token is no grant (other domain and prefix)')
})

t.test('several grant cookies: any valid one, among the first MAX_GRANT_COOKIES', async t => {
  const good = `tgg=${valueOf(grantCookie(base))}`
  const junk = (n: number): string[] => Array.from({ length: n }, (_, i) => `tgg=g1.0.junk${i}.x`)
  t.ok(grantCovers([...junk(MAX_GRANT_COOKIES - 1), good].join('; '), 'tgg', ['s3cret'], '/hls/cam 1/a.ts', NOW))
  t.notOk(grantCovers([...junk(MAX_GRANT_COOKIES), good].join('; '), 'tgg', ['s3cret'], '/hls/cam 1/a.ts', NOW),
    'the rest are not looked at')
})

t.test('an altered grant never covers (unless it decodes to the same bytes: base64url\'s spare low bits)', async t => {
  const value = valueOf(grantCookie({ ...base, tokenPath: '/hls' }))
  const decoded = (g: string): string =>
    g.split('.').map((p, i) => i >= 2 ? Buffer.from(p, 'base64url').toString('hex') : p).join('.')
  const char = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.')
  fc.assert(fc.property(fc.nat(value.length - 1), char, (i, c) => {
    const altered = value.slice(0, i) + c + value.slice(i + 1)
    return decoded(altered) === decoded(value) || !grantCovers(`tgg=${altered}`, 'tgg', ['s3cret'], '/hls/a.ts', NOW)
  }), { numRuns: 500 })
  t.pass('500 altered grants')
})
