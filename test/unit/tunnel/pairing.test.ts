/**
 * Tunnel pairing (src/tunnel/pairing.ts) as a table of decisions: GET first and POST first, several
 * POSTs, re-POSTs, duplicate GETs, windows and orphan windows, the same-address rule, the portal's
 * pair question, the unpaired-leg limits per address and in total, reloads and shutdown. Then a
 * property: any sequence of legs, closes and clock steps keeps the counts and the next deadline
 * equal to a plain model's, and every held POST comes back exactly once.
 */
import t from 'tap'
import fc from 'fast-check'
import { Pairing, type PairingSettings } from '../../../src/tunnel/pairing.js'

const S: PairingSettings = {
  limits: { maxTunnels: 0, maxTunnelsPerIp: 0, maxUnpairedLegs: 10, maxUnpairedLegsPerIp: 5 },
  pairingTimeoutMs: 1000,
  orphanPostMs: null,
  requireSameClientIp: false
}
const free = { tunnels: 0, tunnelsFromIp: 0, closing: false }
const settings = (over: Partial<PairingSettings> = {},
  limits: Partial<PairingSettings['limits']> = {}): PairingSettings =>
  ({ ...S, ...over, limits: { ...S.limits, ...limits } })

function opened<P> (d: ReturnType<Pairing<P>['offerGet']>): Extract<typeof d, { kind: 'open' }> {
  if (d.kind !== 'open') throw new Error(`expected open, got ${JSON.stringify(d)}`)
  return d
}

t.test('GET first: the POST attaches and the GET is no longer unpaired', async t => {
  const p = new Pairing<string>(S)
  const g = opened(p.offerGet('c', 'a', 0, free))
  t.same(g.posts, [], 'nothing was held')
  t.equal(p.unpaired, 1, 'the GET waits')
  t.equal(p.nextDeadline(), 1000, 'for the pairing window')
  t.same(p.offerPost('c', 'a', 10, 'p1'), { kind: 'attach' })
  t.equal(p.unpaired, 0)
  t.equal(p.nextDeadline(), null, 'nothing waits')
  t.same(p.offerPost('c', 'a', 20, 'p2'), { kind: 'attach' }, 'a re-POST joins the same GET')
  t.same(p.expire(5000), { gets: [], posts: [] }, 'a paired GET never expires')
})

t.test('POST first: held until its GET, which takes every POST waiting', async t => {
  const p = new Pairing<string>(S)
  t.same(p.offerPost('c', 'a', 0, 'p1'), { kind: 'hold', deadline: 1000, orphan: false })
  t.same(p.offerPost('c', 'a', 5, 'p2'), { kind: 'hold', deadline: 1005, orphan: false },
    'overlapping POSTs are held side by side')
  t.equal(p.heldPosts, 2)
  t.equal(p.unpaired, 2)
  const g = opened(p.offerGet('c', 'a', 10, free))
  t.same(g.posts, [{ post: 'p1', refusal: null }, { post: 'p2', refusal: null }], 'in arrival order')
  t.equal(p.unpaired, 0, 'neither the GET nor the POSTs wait any more')
  t.equal(p.heldPosts, 0)
  t.equal(p.nextDeadline(), null)
})

t.test('a second GET for an open cookie is a duplicate; after the first ends, a GET opens again', async t => {
  const p = new Pairing<string>(settings({}, { maxUnpairedLegs: 0 }))
  const q = new Pairing<string>(S)
  const g = opened(q.offerGet('c', 'a', 0, free))
  t.same(q.offerGet('c', 'b', 1, free), {
    kind: 'refuse',
    code: 'TG_ERR_TUN_DUPLICATE_GET',
    status: null,
    limit: null,
    why: 'duplicate'
  })
  t.equal(q.unpaired, 1, 'the duplicate counts nothing')
  q.getClosed('c', g.id + 99)
  t.ok(q.hasGet('c'), 'a stale id does not close the GET')
  q.getClosed('c', g.id)
  t.equal(q.unpaired, 0, 'an unpaired GET that ends stops counting')
  t.equal(q.offerGet('c', 'a', 2, free).kind, 'open')
  t.equal(p.offerGet('c', 'a', 0, free).kind, 'refuse', 'over maxUnpairedLegs 0')
})

t.test('windows: an unpaired GET and a held POST expire at their deadlines, orphans sooner', async t => {
  const p = new Pairing<string>(S)
  const g = opened(p.offerGet('g', 'a', 0, free))
  p.offerPost('x', 'a', 100, 'px')
  t.same(p.expire(999), { gets: [], posts: [] }, 'not yet')
  t.same(p.expire(1000), { gets: [{ cookie: 'g', id: g.id }], posts: [] }, 'the GET at its deadline')
  t.ok(p.hasGet('g'), 'its tunnel stays open until the caller closes it')
  t.equal(p.nextDeadline(), 1100)
  t.same(p.expire(1100), { gets: [], posts: [{ post: 'px', code: 'TG_ERR_TUN_PAIRING_TIMEOUT' }] })
  t.equal(p.unpaired, 0)
  t.equal(p.postClosed('px'), false, 'an expired POST is no longer held')

  const relay = new Pairing<string>(settings({ orphanPostMs: 200 }))
  t.same(relay.offerPost('o', 'a', 0, 'po'), { kind: 'hold', deadline: 200, orphan: true },
    'a relay node holds a POST no relay knows for orphanPostMs')
  t.same(relay.expire(200).posts, [{ post: 'po', code: 'TG_ERR_TUN_ORPHAN_POST' }])
  const long = new Pairing<string>(settings({ orphanPostMs: 5000 }))
  t.same(long.offerPost('o', 'a', 0, 'po'), { kind: 'hold', deadline: 1000, orphan: true },
    'never longer than the pairing window')
})

t.test('a held POST that closes stops counting; its GET then finds nothing', async t => {
  const p = new Pairing<string>(S)
  p.offerPost('c', 'a', 0, 'p1')
  t.equal(p.postClosed('p1'), true)
  t.equal(p.postClosed('p1'), false, 'once')
  t.equal(p.unpaired, 0)
  t.equal(p.nextDeadline(), null)
  t.same(opened(p.offerGet('c', 'a', 1, free)).posts, [])
})

t.test('the portal\'s pair question: attach when the GET is here, else 421 and nothing held', async t => {
  const p = new Pairing<string>(S)
  t.same(p.offerPost('c', 'a', 0, 'p', true), { kind: 'refuse', code: null, status: 421, limit: null, why: 'unknown' })
  t.equal(p.heldPosts, 0)
  t.equal(p.unpaired, 0)
  p.offerGet('c', 'a', 0, free)
  t.same(p.offerPost('c', 'a', 0, 'p', true), { kind: 'attach' })
})

t.test('tunnel.requireSameClientIp: a POST from another address is refused, either order', async t => {
  const p = new Pairing<string>(settings({ requireSameClientIp: true }))
  p.offerGet('c', 'a', 0, free)
  const refused = {
    kind: 'refuse',
    code: 'TG_ERR_TUN_CLIENT_MISMATCH',
    status: 403,
    limit: 'tunnel.requireSameClientIp',
    why: 'mismatch',
    getAddress: 'a'
  }
  t.same(p.offerPost('c', 'b', 1, 'pb'), refused)
  t.equal(p.unpaired, 1, 'the GET still waits for its own POST')
  t.same(p.offerPost('c', 'a', 2, 'pa'), { kind: 'attach' })
  p.offerPost('d', 'b', 0, 'pb')
  p.offerPost('d', 'a', 0, 'pa')
  const g = opened(p.offerGet('d', 'a', 1, free))
  t.same(g.posts, [{ post: 'pb', refusal: refused }, { post: 'pa', refusal: null }],
    'the held POST from b is refused, a\'s attaches')
  t.equal(p.unpaired, 0)
  const lax = new Pairing<string>(S)
  lax.offerGet('c', 'a', 0, free)
  t.same(lax.offerPost('c', 'b', 0, 'pb'), { kind: 'attach' }, 'off: any address')
})

t.test('limits: unpaired per address, then in total; sessions for a GET; closing; the order', async t => {
  const p = new Pairing<string>(settings({}, { maxUnpairedLegsPerIp: 2, maxUnpairedLegs: 3 }))
  p.offerGet('g1', 'a', 0, free)
  p.offerPost('p1', 'a', 0, 'x1')
  const perIp = { kind: 'refuse', code: 'TG_ERR_TUN_IP_LIMIT', limit: 'limits.maxUnpairedLegsPerIp', why: 'limit' }
  t.match(p.offerGet('g2', 'a', 0, free), { ...perIp, status: 503 }, 'a third unpaired leg from a: GET answered 503')
  t.match(p.offerPost('p2', 'a', 0, 'x2'), { ...perIp, status: null }, 'a POST closed without an answer')
  t.equal(p.unpairedFrom('a'), 2, 'refused legs count nothing')
  t.same(p.offerPost('g1', 'a', 0, 'x3'), { kind: 'attach' }, 'a POST that pairs is not checked')
  t.equal(p.offerPost('p1', 'a', 0, 'x4').kind, 'hold',
    'a second POST of a held cookie is one more leg, under the limit again')
  t.equal(opened(p.offerGet('p1', 'a', 0, free)).posts.length, 2,
    'a GET whose POSTs wait is not unpaired: let in at the limit')
  p.offerGet('g3', 'b', 0, free)
  p.offerGet('g4', 'c', 0, free)
  p.offerGet('g5', 'd', 0, free)
  t.match(p.offerGet('g6', 'e', 0, free), { code: 'TG_ERR_TUN_TOO_MANY', limit: 'limits.maxUnpairedLegs', status: 503 },
    'then the total')

  const q = new Pairing<string>(settings({}, { maxTunnels: 5, maxTunnelsPerIp: 2 }))
  t.match(q.offerGet('c', 'a', 0, { tunnels: 5, tunnelsFromIp: 0, closing: false }), {
    code: 'TG_ERR_TUN_TOO_MANY',
    limit: 'limits.maxTunnels',
    status: 503
  })
  t.match(q.offerGet('c', 'a', 0, { tunnels: 1, tunnelsFromIp: 2, closing: false }), {
    code: 'TG_ERR_TUN_IP_LIMIT',
    limit: 'limits.maxTunnelsPerIp'
  })
  t.same(q.offerGet('c', 'a', 0, { ...free, closing: true }), {
    kind: 'refuse',
    code: 'TG_ERR_TUN_TOO_MANY',
    status: 503,
    limit: null,
    why: 'closing'
  })
  q.offerGet('c', 'a', 0, free)
  t.match(q.offerGet('c', 'a', 0, { tunnels: 9, tunnelsFromIp: 9, closing: true }), { why: 'duplicate' },
    'a duplicate is told as such, before any limit')
})

t.test('a reload that shortens the window: a later leg may expire first', async t => {
  const p = new Pairing<string>(S)
  p.offerPost('a', 'x', 0, 'slow')
  p.settings = settings({ pairingTimeoutMs: 100 })
  p.offerPost('b', 'x', 10, 'quick')
  t.equal(p.nextDeadline(), 110)
  t.same(p.expire(110).posts.map(e => e.post), ['quick'])
  t.same(p.expire(1000).posts.map(e => e.post), ['slow'])
})

t.test('close: held POSTs come back to be closed, nothing waits, open GETs stay known', async t => {
  const p = new Pairing<string>(S)
  p.offerPost('a', 'x', 0, 'p1')
  p.offerPost('b', 'x', 0, 'p2')
  p.offerGet('g', 'x', 0, free)
  t.same(p.close().sort(), ['p1', 'p2'])
  t.equal(p.unpaired, 0)
  t.equal(p.nextDeadline(), null)
  t.ok(p.hasGet('g'))
  t.same(p.expire(1e9), { gets: [], posts: [] })
})

/** A plain model of the same rules (no limits: a large maxUnpairedLegs) for the property below. */
interface ModelLeg { cookie: string, address: string, deadline: number }

t.test('property: any sequence keeps the counts, the next deadline and the held POSTs as the model says', async t => {
  const cookie = fc.constantFrom('c1', 'c2', 'c3')
  const address = fc.constantFrom('a', 'b')
  const op = fc.oneof(
    fc.record({ op: fc.constant('get' as const), cookie, address }),
    fc.record({ op: fc.constant('post' as const), cookie, address }),
    fc.record({ op: fc.constant('closePost' as const), pick: fc.nat() }),
    fc.record({ op: fc.constant('closeGet' as const), cookie }),
    fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 700 }) })
  )
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), fc.boolean(), (ops, sameIp) => {
    const p = new Pairing<number>(settings({ requireSameClientIp: sameIp }, {
      maxUnpairedLegs: 1000,
      maxUnpairedLegsPerIp: 0
    }))
    const gets = new Map<string, { id: number, address: string, waiting: ModelLeg | null }>()
    const held = new Map<number, ModelLeg>()
    const seen = new Set<number>()
    let now = 0
    let next = 0
    const done = (post: number): void => {
      if (seen.has(post)) throw new Error(`POST ${post} came back twice`)
      seen.add(post)
    }
    for (const o of ops) {
      if (o.op === 'get') {
        const d = p.offerGet(o.cookie, o.address, now, free)
        if (gets.has(o.cookie)) { if (d.kind !== 'refuse' || d.why !== 'duplicate') return false; continue }
        if (d.kind !== 'open') return false
        let paired = false
        const want = [...held].filter(([, h]) => h.cookie === o.cookie)
        if (d.posts.length !== want.length) return false
        for (const [i, [post, h]] of want.entries()) {
          const r = d.posts[i]!
          if (r.post !== post) return false
          held.delete(post)
          done(post)
          const mismatch = sameIp && h.address !== o.address
          if ((r.refusal !== null) !== mismatch) return false
          if (!mismatch) paired = true
        }
        gets.set(o.cookie, {
          id: d.id,
          address: o.address,
          waiting: paired ? null : { cookie: o.cookie, address: o.address, deadline: now + 1000 }
        })
      } else if (o.op === 'post') {
        const post = next++
        const d = p.offerPost(o.cookie, o.address, now, post)
        const g = gets.get(o.cookie)
        if (g !== undefined) {
          const mismatch = sameIp && g.address !== o.address
          if (d.kind !== (mismatch ? 'refuse' : 'attach')) return false
          if (!mismatch) g.waiting = null
          done(post)
        } else {
          if (d.kind !== 'hold' || d.deadline !== now + 1000) return false
          held.set(post, { cookie: o.cookie, address: o.address, deadline: now + 1000 })
        }
      } else if (o.op === 'closePost') {
        const posts = [...held.keys()]
        if (posts.length === 0) { if (p.postClosed(-1)) return false; continue }
        const post = posts[o.pick % posts.length]!
        if (!p.postClosed(post)) return false
        held.delete(post)
        done(post)
      } else if (o.op === 'closeGet') {
        const g = gets.get(o.cookie)
        if (g === undefined) continue
        p.getClosed(o.cookie, g.id)
        gets.delete(o.cookie)
      } else {
        now += o.ms
        const e = p.expire(now)
        const wantGets = [...gets].filter(([, g]) =>
          g.waiting !== null && g.waiting.deadline <= now).map(([c]) => c).sort()
        if (JSON.stringify(e.gets.map(g => g.cookie).sort()) !== JSON.stringify(wantGets)) return false
        for (const c of wantGets) gets.get(c)!.waiting = null
        const wantPosts = [...held].filter(([, h]) => h.deadline <= now).map(([post]) => post).sort((a, b) => a - b)
        if (JSON.stringify(e.posts.map(x => x.post).sort((a, b) => a - b)) !== JSON.stringify(wantPosts)) return false
        for (const post of wantPosts) { held.delete(post); done(post) }
      }
      const waiting = [...gets.values()].flatMap(g => g.waiting === null ? [] : [g.waiting])
      const legs = [...waiting, ...held.values()]
      if (p.unpaired !== legs.length || p.heldPosts !== held.size) return false
      for (const a of ['a', 'b']) if (p.unpairedFrom(a) !== legs.filter(l => l.address === a).length) return false
      const deadline = legs.length === 0 ? null : Math.min(...legs.map(l => l.deadline))
      if (p.nextDeadline() !== deadline) return false
    }
    return true
  }), { numRuns: 300 })
  t.pass('300 random sequences agree with the model')
})
