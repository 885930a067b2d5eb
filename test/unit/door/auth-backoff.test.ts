import t from 'tap'
import { AuthBackoff, FailureTable, addressKey, type AuthBackoffPolicy } from '../../../src/door/auth-backoff.js'

const policy = { maxFailures: 3, windowMs: 10_000, backoffMs: 1_000, backoffMaxMs: 8_000, maxEntries: 100 }

t.test('N failures in a window start a refusal period that doubles up to the maximum', async t => {
  const f = new FailureTable(policy)
  let now = 1_000_000
  t.equal(f.fail('a', now), 0, 'first failure: no refusal')
  t.equal(f.fail('a', now += 10), 0)
  t.equal(f.retryAfter('a', now), 0, 'two failures: still allowed')
  t.equal(f.fail('a', now += 10), 1_000, 'the third starts the first period')
  t.equal(f.retryAfter('a', now), 1_000)
  t.equal(f.retryAfter('a', now + 999), 1)
  t.equal(f.retryAfter('a', now + 1_000), 0, 'allowed again when it ends')
  const delays: number[] = []
  for (let i = 0; i < 6; i++) { now += 1_000 + (delays.at(-1) ?? 0); delays.push(f.fail('a', now)) }
  t.same(delays, [2_000, 4_000, 8_000, 8_000, 8_000, 8_000], 'each further failure doubles it, capped at backoffMaxMs')
  t.equal(f.retryAfter('b', now), 0, 'other keys are not affected')
})

t.test('a quiet window after the last failure or refusal forgets the key; clear() forgets it at once', async t => {
  const f = new FailureTable(policy)
  let now = 0
  f.fail('a', now); f.fail('a', now)
  now += policy.windowMs + 1
  t.equal(f.fail('a', now), 0, 'failures before a quiet window do not count')
  t.equal(f.size, 1)
  f.fail('a', now); t.equal(f.fail('a', now), 1_000, 'three in a row again: refused')
  // Window measured from the end of the refusal: a long refusal must not expire the count by itself.
  for (let i = 0; i < 4; i++) f.fail('a', now)
  t.equal(f.retryAfter('a', now), 8_000)
  now += 8_000 + policy.windowMs - 1
  t.equal(f.fail('a', now), 8_000, 'a failure right after a long refusal goes on at the maximum')
  f.clear('a')
  t.equal(f.retryAfter('a', now), 0)
  t.equal(f.fail('a', now), 0, 'cleared: counting starts again')
  t.equal(new FailureTable({ ...policy, maxFailures: 0 }).fail('x', 0), 0, 'maxFailures 0: never refused')
})

t.test('100k distinct keys: the table stays at maxEntries and the key under attack is kept', async t => {
  const f = new FailureTable({ ...policy, maxEntries: 1_000 })
  for (let i = 0; i < 3; i++) f.fail('victim-attacker', 0)
  for (let i = 0; i < 100_000; i++) {
    f.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1)
    // The attacker keeps trying: each refused attempt keeps its entry recent.
    if (i % 500 === 0) f.retryAfter('victim-attacker', 1)
  }
  t.equal(f.size, 1_000, 'bounded')
  t.ok(f.retryAfter('victim-attacker', 2) > 0, 'the refused key survived the flood')
})

t.test('addressKey: IPv4 as is (mapped too), IPv6 by its /64', async t => {
  t.equal(addressKey('192.0.2.7'), '192.0.2.7')
  t.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7')
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64', 'the same /64, written in full')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.not(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'), 'another /64 is another key')
})

const both: AuthBackoffPolicy = {
  maxFailuresPerAddress: 3,
  maxFailuresPerUser: 5,
  windowMs: 10_000,
  backoffMs: 1_000,
  backoffMaxMs: 8_000,
  maxEntries: 50
}

t.test('per address and per user; addresses that signed in as a user are exempt from its back-off only', async t => {
  const b = new AuthBackoff(both, ['alice'])
  const now = 0
  b.succeed('192.0.2.1', 'alice', now) // alice's own address
  for (let i = 0; i < 5; i++) b.fail(`198.51.100.${i}`, 'alice', now) // distributed guessing
  t.same(b.check('198.51.100.77', 'alice', now), { blocked: true, by: 'user', retryAfterMs: 1_000 },
    'a new address asking for alice: refused (per user)')
  t.same(b.check('198.51.100.77', 'bob', now), { blocked: false }, 'the same new address for another user: allowed')
  t.same(b.check('192.0.2.1', 'alice', now), { blocked: false }, "alice's own address is exempt from alice's back-off")
  b.succeed('192.0.2.1', 'alice', now)
  t.same(b.check('198.51.100.77', 'alice', now), { blocked: true, by: 'user', retryAfterMs: 1_000 },
    'a success while under attack does not lift the per-user refusal')
  for (let i = 0; i < 3; i++) b.fail('192.0.2.1', 'alice', now)
  t.match(b.check('192.0.2.1', 'alice', now), { blocked: true, by: 'address' },
    'the per-address limit still holds for a trusted address')
  t.match(b.check('192.0.2.1', null, now), { blocked: true, by: 'address' }, 'and for requests naming no user')
})

t.test('a success forgets the address and, when not under attack, the user', async t => {
  const b = new AuthBackoff(both, ['alice'])
  b.fail('192.0.2.1', 'alice', 0); b.fail('192.0.2.1', 'alice', 0)
  b.succeed('192.0.2.1', 'alice', 0)
  b.fail('192.0.2.1', 'alice', 0); b.fail('192.0.2.1', 'alice', 0)
  t.same(b.check('192.0.2.1', 'alice', 0), { blocked: false }, 'two failures after a success: the count started again')
})

t.test('a flood of invented user names cannot evict a configured user', async t => {
  const b = new AuthBackoff(both, ['alice'])
  for (let i = 0; i < 5; i++) b.fail(`198.51.100.${i}`, 'alice', 0)
  for (let i = 0; i < 100_000; i++) b.fail(`203.0.${(i >> 8) & 255}.${i & 255}`, `nobody-${i}`, 0)
  t.match(b.check('203.0.113.200', 'alice', 1), { blocked: true, by: 'user' }, 'alice is still under back-off')
  t.ok(b.sizes.addresses <= 50 && b.sizes.users <= 50 + 2, `tables bounded (${JSON.stringify(b.sizes)})`)
})
