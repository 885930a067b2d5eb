/**
 * forward-proof.ts: a proof verifies with its secret (or any accepted one) within the skew, and
 * not when a byte of it changes, with another secret, too old or too new, or malformed; the nonce
 * window refuses a replay within the window, forgets it after, and refuses when full.
 */
import t from 'tap'
import {
  NonceWindow, newNonce, signForward, verifyForward, type ForwardClaims
} from '../../../../src/tunnel/codec/forward-proof.js'

const SECRET = 'cluster-secret-0123456789'
const OTHER = 'another-secret-0123456789'
const NOW = 1_800_000_000_000
const claims = (over: Partial<ForwardClaims> = {}): ForwardClaims =>
  ({
    kind: 'get',
    client: '203.0.113.7',
    path: '/cam1',
    user: 'alice',
    cookie: 'Qh7Jk2Lm9Np4Rs6T',
    ts: NOW,
    nonce: newNonce(),
    ...over
  })

t.test('sign then verify: every claim comes back', async t => {
  const c = claims()
  const v = verifyForward(signForward(SECRET, c), [SECRET], NOW + 10, 30_000)
  t.same(v, { ok: true, claims: c })
  const read = claims({
    kind: 'read',
    client: '',
    target: 'GET /metrics',
    path: undefined,
    user: undefined,
    cookie: undefined
  })
  const r = verifyForward(signForward(SECRET, read), [SECRET], NOW, 30_000)
  t.ok(r.ok && r.claims.target === 'GET /metrics' && r.claims.path === undefined, 'a read proof with its target only')
})

t.test('rotation: any accepted secret verifies', async t => {
  const proof = signForward(OTHER, claims())
  t.equal(verifyForward(proof, [SECRET], NOW, 30_000).ok, false, 'not with the other secret alone')
  t.equal(verifyForward(proof, [SECRET, OTHER], NOW, 30_000).ok, true, 'with it in the accepted list')
})

t.test('tampering, a wrong secret, skew and garbage are refused with their reason', async t => {
  const proof = signForward(SECRET, claims())
  const [, payload = '', sig = ''] = proof.split('.')
  const forged = Buffer.from(payload, 'base64url').toString().replace('203.0.113.7', '198.51.100.9')
  t.match(verifyForward(`tgf1.${Buffer.from(forged).toString('base64url')}.${sig}`, [SECRET], NOW, 30_000),
    { ok: false, reason: 'bad-signature' }, 'a changed client address')
  t.match(verifyForward(proof.slice(0, -2) + (proof.endsWith('AA') ? 'BB' : 'AA'), [SECRET], NOW, 30_000),
    { ok: false, reason: 'bad-signature' }, 'a changed MAC')
  t.match(verifyForward(signForward(OTHER, claims()), [SECRET], NOW, 30_000), { ok: false, reason: 'bad-signature' },
    'a wrong secret')
  t.match(verifyForward(proof, [SECRET], NOW + 30_001, 30_000), { ok: false, reason: 'stale' }, 'older than the skew')
  t.match(verifyForward(proof, [SECRET], NOW - 30_001, 30_000), { ok: false, reason: 'stale' },
    'newer than the skew (a clock ahead)')
  t.equal(verifyForward(proof, [SECRET], NOW + 30_000, 30_000).ok, true, 'exactly at the skew')
  const malformed = ['', 'tgf1.', 'tgf1..', 'tgf2.e30.AAAA', 'tgf1.e30', `tgf1.${'A'.repeat(3000)}.AA`, 'tgf1.!!.AA']
  for (const bad of malformed) {
    const got = verifyForward(bad, [SECRET], NOW, 30_000)
    t.match(got, { ok: false, reason: 'malformed' }, JSON.stringify(bad.slice(0, 20)))
  }
  // Well signed but not a proof's shape: malformed, never trusted.
  const body = 'tgf1.' +
    Buffer.from(JSON.stringify({ k: 'admin', c: 'x', ts: NOW, n: 'n'.repeat(22) })).toString('base64url')
  const { createHmac } = await import('node:crypto')
  t.match(verifyForward(`${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`, [SECRET], NOW,
    30_000),
  { ok: false, reason: 'malformed' }, 'an unknown kind')
})

t.test('NonceWindow: a replay within the window, forgotten after it, bounded', async t => {
  const w = new NonceWindow(3, 60_000)
  t.equal(w.admit('a', 0), 'fresh')
  t.equal(w.admit('a', 59_999), 'replayed', 'within the window')
  t.equal(w.admit('b', 1000), 'fresh')
  t.equal(w.admit('c', 2000), 'fresh')
  t.equal(w.admit('d', 3000), 'full', 'no room: refused, not evicting a live nonce')
  t.equal(w.admit('a', 60_000), 'fresh', 'a expired at 60 s: forgotten, admitted again')
  t.equal(w.size, 3)
  t.equal(w.admit('e', 70_000), 'fresh', 'b and c expired, room again')
  t.equal(w.size, 2)
})
