/**
 * parseSummaries (src/route/relay-view.ts): what a portal keeps of a relay node's /status/summary
 * reply. Valid summaries come back as they were; anything else (any JSON at all) is left out field
 * by field, never thrown.
 */
import t from 'tap'
import fc from 'fast-check'
import { parseSummaries, SUMMARY_PATHS, type RelaySummary } from '../../../src/route/relay-view.js'

const count = fc.nat({ max: 1e12 })
const summary: fc.Arbitrary<RelaySummary> = fc.record({
  relay: fc.string({ maxLength: 40 }),
  tunnels: count,
  unpairedLegs: count,
  bytes: count,
  backends: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }).filter(k => k !== '__proto__'),
    fc.record({ bytes: count })),
  paths: fc.array(fc.record({ path: fc.string({ maxLength: 30 }), tunnels: count, bytes: count }), {
    maxLength: SUMMARY_PATHS
  })
})

t.test('valid summaries round-trip through JSON', async t => {
  fc.assert(fc.property(fc.array(summary, { maxLength: 5 }), list => {
    t.same(parseSummaries(JSON.parse(JSON.stringify({ relays: list }))), list)
  }), { numRuns: 300 })
})

t.test('any JSON: never throws, and every summary kept has the shape', async t => {
  fc.assert(fc.property(fc.jsonValue(), fc.array(fc.jsonValue(), { maxLength: 4 }), (v, list) => {
    for (const body of [v, { relays: v }, { relays: list }]) {
      const got = parseSummaries(body)
      for (const s of got) {
        if (typeof s.relay !== 'string' ||
          ![s.tunnels, s.unpairedLegs, s.bytes].every(n => Number.isFinite(n) && n >= 0)) return false
        if (!Array.isArray(s.paths) || s.paths.length > SUMMARY_PATHS) return false
      }
    }
    return true
  }), { numRuns: 500 })
  t.pass('500 arbitrary bodies: no throw, only well-formed summaries kept')
})

t.test('bad fields', async t => {
  t.same(parseSummaries(null), [])
  t.same(parseSummaries({ relays: 'x' }), [])
  t.same(parseSummaries({ relays: [{ relay: 'r', tunnels: -1, unpairedLegs: 0, bytes: 0 }] }), [],
    'a negative count drops the summary')
  t.same(parseSummaries({
    relays: [{
      relay: 'r',
      tunnels: 1,
      unpairedLegs: 0,
      bytes: 5,
      backends: { a: { bytes: 'x' }, b: { bytes: 3 } },
      paths: [{ path: '/p', tunnels: 1, bytes: 2 }, { path: 7 }]
    }]
  }),
  [{
    relay: 'r',
    tunnels: 1,
    unpairedLegs: 0,
    bytes: 5,
    backends: { b: { bytes: 3 } },
    paths: [{ path: '/p', tunnels: 1, bytes: 2 }]
  }],
  'bad backends and paths are left out, the rest kept')
  t.equal(parseSummaries({
    relays: [{ relay: 'x'.repeat(500), tunnels: 0, unpairedLegs: 0, bytes: 0 }]
  })[0]!.relay.length,
  200, 'relay names are bounded')
})
