/**
 * Where both routers send a leg (src/route/leg-order.ts): a POST to the node holding its GET,
 * then the HRW order of the nodes taking new tunnels, then the draining ones; the first of the order
 * is the HRW owner among the open nodes (what local workers hand a leg to), for every key.
 */
import t from 'tap'
import fc from 'fast-check'
import { ownerOf, rankNodes } from '../../../src/balancer/hrw.js'
import { legOrder } from '../../../src/route/leg-order.js'

const nodes = (draining: string[] = []): Array<{ id: string, draining: boolean }> =>
  ['n0', 'n1', 'n2', 'n3'].map(id => ({ id, draining: draining.includes(id) }))
const ids = (order: Array<{ id: string }>): string[] => order.map(n => n.id)
const hrw = (key: string, of: string[]): string[] => rankNodes(key, of.map(id => ({ id, weight: 1 })))

t.test('no node: no order', async t => {
  t.same(legOrder('k', []), [])
  t.same(legOrder('k', [], 'n1'), [], 'a holder that is not up is not tried')
})

t.test('all open: the HRW order of the key', async t => {
  for (const key of ['a', 'cookie-1', 'rtsp:7', 'x'.repeat(40)]) {
    t.same(ids(legOrder(key, nodes())), hrw(key, ['n0', 'n1', 'n2', 'n3']), key)
  }
})

t.test('draining nodes after the open ones, each part in HRW order', async t => {
  const key = 'cookie-2'
  const order = ids(legOrder(key, nodes(['n1', 'n3'])))
  t.same(order, [...hrw(key, ['n0', 'n2']), ...hrw(key, ['n1', 'n3'])])
  t.same(ids(legOrder(key, nodes(['n0', 'n1', 'n2', 'n3']))), hrw(key, ['n0', 'n1', 'n2', 'n3']),
    'every node draining: all of them, in HRW order')
})

t.test('a POST goes first to its GET\'s node, draining or not; elsewhere the order is unchanged', async t => {
  const key = 'cookie-3'
  const plain = ids(legOrder(key, nodes(['n2'])))
  const held = ids(legOrder(key, nodes(['n2']), 'n2'))
  t.equal(held[0], 'n2')
  t.same(held.slice(1), plain.filter(id => id !== 'n2'))
  t.same(ids(legOrder(key, nodes(), 'n9')), ids(legOrder(key, nodes())),
    'a holder that is not among the nodes (down) changes nothing')
})

t.test('property: a permutation of the nodes whose head is the HRW owner among the open ones', async t => {
  fc.assert(fc.property(fc.string({ maxLength: 30 }), fc.subarray(['n0', 'n1', 'n2', 'n3']), (key, draining) => {
    const ns = nodes(draining)
    const order = ids(legOrder(key, ns))
    if ([...order].sort().join() !== 'n0,n1,n2,n3') return false
    const open = ns.filter(n => !n.draining)
    const from = open.length > 0 ? open : ns
    return order[0] === ownerOf(key, from.map(n => ({ id: n.id, weight: 1 })))
  }), { numRuns: 500 })
  t.pass('500 keys')
})
