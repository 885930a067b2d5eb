import t from 'tap'
import { chooseBackend, type BackendSnapshot } from '../../../src/balancer/policy.js'

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
