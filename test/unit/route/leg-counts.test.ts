/**
 * The leg-limit counters the portal uses in front of local workers and remote relays
 * (src/route/leg-counts.ts): the relay's check order and codes, per-address totals, and unpaired
 * entries that end on pairing, on their remover, or when their window expires.
 */
import t from 'tap'
import { legLimitHit, PerIpCounts, UnpairedLegs } from '../../../src/route/leg-counts.js'

const L = { maxTunnels: 4, maxTunnelsPerIp: 3, maxUnpairedLegs: 3, maxUnpairedLegsPerIp: 2 }
const none = { tunnels: 0, tunnelsFromIp: 0, unpaired: 0, unpairedFromIp: 0 }

t.test('legLimitHit: the relay order and codes', async t => {
  t.equal(legLimitHit(L, none, { tunnel: true, unpaired: true }), null, 'under every limit')
  t.same(legLimitHit(L, { ...none, tunnels: 4, tunnelsFromIp: 3, unpairedFromIp: 2, unpaired: 3 }, {
    tunnel: true,
    unpaired: true
  }),
  { code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxTunnels' }, 'total sessions first')
  t.same(legLimitHit(L, { ...none, tunnelsFromIp: 3, unpairedFromIp: 2 }, { tunnel: true, unpaired: true }),
    { code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxTunnelsPerIp' }, 'then sessions per address')
  t.same(legLimitHit(L, { ...none, unpairedFromIp: 2, unpaired: 3 }, { tunnel: true, unpaired: true }),
    { code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxUnpairedLegsPerIp' }, 'then unpaired per address')
  t.same(legLimitHit(L, { ...none, unpaired: 3 }, { tunnel: false, unpaired: true }),
    { code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxUnpairedLegs' }, 'then unpaired in total')
  t.equal(legLimitHit(L, { ...none, tunnels: 9, tunnelsFromIp: 9 }, { tunnel: false, unpaired: true }), null,
    'a POST opens no session')
  t.equal(legLimitHit(L, { ...none, unpaired: 9, unpairedFromIp: 9 }, { tunnel: true, unpaired: false }), null,
    'a leg that pairs is not unpaired')
  t.equal(legLimitHit({ ...L, maxTunnels: 0, maxTunnelsPerIp: 0, maxUnpairedLegsPerIp: 0 },
    { tunnels: 99, tunnelsFromIp: 99, unpaired: 0, unpairedFromIp: 99 }, { tunnel: true, unpaired: true }),
  null, '0 = unlimited')
  t.same(legLimitHit({ ...L, maxUnpairedLegs: 0 }, none, { tunnel: false, unpaired: true }),
    { code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxUnpairedLegs' },
    'maxUnpairedLegs 0 admits no unpaired leg (as the relay)')
})

t.test('PerIpCounts: totals, never below zero, entries gone at zero', async t => {
  const c = new PerIpCounts()
  c.add('a', 2); c.add('b', 1)
  t.equal(c.total, 3); t.equal(c.get('a'), 2)
  c.add('a', -5)
  t.equal(c.get('a'), 0, 'clamped at zero'); t.equal(c.total, 1, 'total follows the clamp')
  c.clear()
  t.equal(c.total, 0)
})

t.test('UnpairedLegs: pairing, removers and expiry', async t => {
  const u = new UnpairedLegs()
  const seen: number[] = []
  u.onChange = n => seen.push(n)
  u.addGet('c1', 'a', 60_000)
  u.addGet('c1', 'a', 60_000)
  t.equal(u.size, 1, 'a second GET for one cookie counts once')
  const done = u.addPost('c2', 'a', 60_000)
  u.addPost('c2', 'b', 60_000)
  t.equal(u.from('a'), 2); t.equal(u.size, 3)
  done(); done()
  t.equal(u.size, 2, 'a remover ends its entry once')
  u.postsPaired('c2')
  t.equal(u.size, 1, 'a GET pairs every POST waiting for its cookie')
  t.notOk(u.hasPosts('c2'))
  u.getPaired('c1')
  t.equal(u.size, 0)
  t.same(seen, [1, 2, 3, 2, 1, 0])
  u.addGet('g', 'a', 30)
  u.addPost('p', 'a', 30)
  t.equal(u.size, 2)
  await new Promise(resolve => setTimeout(resolve, 80))
  t.equal(u.size, 0, 'entries expire after their window')
  t.equal(u.from('a'), 0)
  u.addGet('g2', 'a', 60_000)
  u.clear()
  t.equal(u.size, 0, 'clear ends every entry (and its timer)')
})
