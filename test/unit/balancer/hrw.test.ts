import t from 'tap'
import { hrwHash64Hex, hrwScore, ownerOf, rankNodes, type HrwNode } from '../../../src/balancer/hrw.js'

const COOKIES = 100_000
const MASK64 = (1n << 64n) - 1n

/** Independent reference of the documented hash, in BigInt, over Buffer's UTF-8 encoder. */
function refFnv1a64 (bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & MASK64
  return h
}
function refFmix64 (x: bigint): bigint {
  x ^= x >> 33n
  x = (x * 0xff51afd7ed558ccdn) & MASK64
  x ^= x >> 33n
  x = (x * 0xc4ceb9fe1a85ec53n) & MASK64
  x ^= x >> 33n
  return x
}
function refHash (key: string, id: string): bigint {
  return refFmix64(refFnv1a64(Buffer.concat([Buffer.from(key, 'utf8'), Buffer.from([0xff]), Buffer.from(id, 'utf8')])))
}

/** Seeded PRNG (mulberry32) so every run draws the same cookies. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

/** Cookies shaped like the ones real clients send: FFmpeg/live555 hex, GStreamer/QuickTime base64-ish. */
function makeCookies (n: number, seed: number): string[] {
  const rnd = prng(seed)
  const hex = '0123456789abcdef'
  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const alphabet = i % 2 === 0 ? hex : b64
    const len = i % 2 === 0 ? 32 : 22
    let s = ''
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rnd() * alphabet.length)]
    out.push(s)
  }
  return out
}

const relays = (n: number, weight = 1): HrwNode[] =>
  Array.from({ length: n }, (_, i) => ({ id: `relay-${i + 1}`, weight }))

t.test('hash follows the documented construction (BigInt reference)', async (t) => {
  // The reference's FNV-1a 64 against the published test vectors (Fowler/Noll/Vo).
  t.equal(refFnv1a64(Buffer.from('')).toString(16), 'cbf29ce484222325')
  t.equal(refFnv1a64(Buffer.from('a')).toString(16), 'af63dc4c8601ec8c')
  t.equal(refFnv1a64(Buffer.from('foobar')).toString(16), '85944171f73967e8')
  const rnd = prng(7)
  const pool = 'az09-_.:/+=\u00e9\u00fc\u4e2d\u{1f36a}\ud800' // ASCII, 2-, 3-, 4-byte UTF-8 and a lone surrogate
  const chars = [...pool]
  const pick = (len: number): string =>
    Array.from({ length: len }, () => chars[Math.floor(rnd() * chars.length)]).join('')
  let mismatches = 0
  for (let i = 0; i < 3000; i++) {
    const key = pick(Math.floor(rnd() * 40))
    const id = pick(Math.floor(rnd() * 20))
    if (hrwHash64Hex(key, id) !== refHash(key, id).toString(16).padStart(16, '0')) mismatches++
  }
  t.equal(mismatches, 0, 'two-lane 32-bit arithmetic equals the 64-bit reference on 3000 random pairs')
})

t.test('golden values (a change here re-shuffles every cluster: do it on purpose or not at all)', async (t) => {
  const three = relays(3)
  const weighted: HrwNode[] = [
    { id: '10.0.0.11:8081', weight: 1 }, { id: '10.0.0.12:8081', weight: 2 },
    { id: '10.0.0.13:8081', weight: 3 }, { id: '10.0.0.14:8081', weight: 1 }
  ]
  const table: Array<[cookie: string, hash: string, owner3: string, rankWeighted: string]> = [
    ['a', 'cc6fa44c9d4cd53c', 'relay-1', '11,12,13,14'],
    ['ffmpeg-0123456789abcdef0123456789abcdef', '96c624eb12edd274', 'relay-1', '14,13,12,11'],
    ['6a7e2b3c5d4f1e0a', '3bad2f37576d654d', 'relay-2', '14,12,13,11'],
    ['VLC1234567890', '82f22c029da53483', 'relay-2', '11,12,13,14'],
    ['Zm9vYmFy/+=', '55338433fec2643c', 'relay-1', '13,14,11,12'],
    ['\u00fcmlaut-cookie', '987ad9709aa33adb', 'relay-2', '14,13,12,11'],
    ['\u{1f36a}', '6277512b8708eb78', 'relay-2', '14,12,11,13'],
    ['', 'f4e4e1447852e0c6', 'relay-1', '12,11,13,14']
  ]
  for (const [cookie, hash, owner3, rank] of table) {
    t.equal(hrwHash64Hex(cookie, 'relay-1'), hash, `hash(${JSON.stringify(cookie)}, relay-1)`)
    t.equal(ownerOf(cookie, three), owner3, `owner of ${JSON.stringify(cookie)} among relay-1..3`)
    t.equal(rankNodes(cookie, weighted).map(id => id.slice(7, 9)).join(','), rank,
      `weighted rank of ${JSON.stringify(cookie)}`)
  }
})

t.test('removing one of N relays moves exactly the cookies it owned (≈ 1/N)', async (t) => {
  const cookies = makeCookies(COOKIES, 1)
  for (const n of [3, 5, 10]) {
    const all = relays(n)
    const gone = all[Math.floor(n / 2)]!.id
    const rest = all.filter(r => r.id !== gone)
    let owned = 0
    let wrong = 0
    for (const c of cookies) {
      const before = ownerOf(c, all)
      const after = ownerOf(c, rest)
      if (before === gone) {
        owned++
        if (after === gone || after === null) wrong++
      } else if (after !== before) {
        wrong++
      }
    }
    t.equal(wrong, 0, `N=${n}: only cookies owned by ${gone} moved`)
    t.ok(Math.abs(owned / COOKIES - 1 / n) < 0.01,
      `N=${n}: ${gone} owned ${(owned / COOKIES * 100).toFixed(2)} % ≈ ${(100 / n).toFixed(2)} %`)
  }
})

t.test('adding a relay to N moves ≈ 1/(N+1), all of it to the new relay', async (t) => {
  const cookies = makeCookies(COOKIES, 2)
  for (const n of [3, 5, 10]) {
    const before = relays(n)
    const after = [...before, { id: 'relay-new', weight: 1 }]
    let moved = 0
    let wrong = 0
    for (const c of cookies) {
      const a = ownerOf(c, before)
      const b = ownerOf(c, after)
      if (a !== b) {
        moved++
        if (b !== 'relay-new') wrong++
      }
    }
    t.equal(wrong, 0, `N=${n}: every moved cookie went to the new relay`)
    t.ok(Math.abs(moved / COOKIES - 1 / (n + 1)) < 0.01,
      `N=${n}: moved ${(moved / COOKIES * 100).toFixed(2)} % ≈ ${(100 / (n + 1)).toFixed(2)} %`)
  }
})

t.test('weights are respected within 5 % over 100,000 cookies', async (t) => {
  const cookies = makeCookies(COOKIES, 3)
  for (const weights of [[1, 2, 3], [1, 1, 1, 5], [10, 1], [0.5, 1.5]]) {
    const nodes = weights.map((w, i) => ({ id: `relay-${i + 1}`, weight: w }))
    const counts = new Map<string, number>()
    for (const c of cookies) { const o = ownerOf(c, nodes)!; counts.set(o, (counts.get(o) ?? 0) + 1) }
    const total = weights.reduce((a, b) => a + b, 0)
    for (const n of nodes) {
      const expected = COOKIES * n.weight / total
      const got = counts.get(n.id) ?? 0
      t.ok(Math.abs(got - expected) / expected < 0.05,
        `weights ${weights.join(':')}: ${n.id} got ${got}, expected ≈ ${Math.round(expected)}`)
    }
  }
})

t.test('changing one weight only moves cookies to or from that relay', async (t) => {
  const cookies = makeCookies(20_000, 4)
  const before = relays(5)
  const after = before.map(r => r.id === 'relay-3' ? { ...r, weight: 2 } : r)
  let wrong = 0
  let gained = 0
  for (const c of cookies) {
    const a = ownerOf(c, before)
    const b = ownerOf(c, after)
    if (a !== b) { if (b === 'relay-3') gained++; else wrong++ }
  }
  t.equal(wrong, 0)
  // relay-3 share goes from 1/5 to 2/6: it gains ≈ 13.3 % of all cookies.
  t.ok(Math.abs(gained / 20_000 - (2 / 6 - 1 / 5)) < 0.015, `gained ${gained}`)
})

t.test('result does not depend on node order', async (t) => {
  const rnd = prng(5)
  const cookies = makeCookies(2000, 6)
  const nodes: HrwNode[] = [1, 2, 3, 1, 1, 4, 2].map((w, i) => ({ id: `10.1.0.${i + 1}:8081`, weight: w }))
  let diffOwner = 0
  let diffRank = 0
  for (const c of cookies) {
    const shuffled = [...nodes]
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1))
      ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
    }
    if (ownerOf(c, shuffled) !== ownerOf(c, nodes)) diffOwner++
    if (rankNodes(c, shuffled).join() !== rankNodes(c, nodes).join()) diffRank++
  }
  t.equal(diffOwner, 0, 'owner')
  t.equal(diffRank, 0, 'rank')
})

t.test('rankNodes is the fallback order', async (t) => {
  const cookies = makeCookies(2000, 8)
  const nodes = relays(6)
  let bad = 0
  for (const c of cookies) {
    const rank = rankNodes(c, nodes)
    if (rank.length !== 6 || new Set(rank).size !== 6 || rank[0] !== ownerOf(c, nodes)) bad++
    // Without the owner, the new owner is the runner-up; without the top two, the third; and so on.
    if (ownerOf(c, nodes.filter(n => n.id !== rank[0])) !== rank[1]) bad++
    if (rankNodes(c, nodes.filter(n => n.id !== rank[0] && n.id !== rank[1])).join() !== rank.slice(2).join()) bad++
  }
  t.equal(bad, 0)
})

t.test('edge cases: no nodes, drained and invalid weights, duplicates, ties', async (t) => {
  t.equal(ownerOf('c', []), null)
  t.same(rankNodes('c', []), [])
  t.equal(ownerOf('c',
    [{ id: 'a', weight: 0 }, { id: 'b', weight: -1 }, { id: 'c', weight: NaN }, { id: 'd', weight: Infinity }]),
  null,
  'weights 0, negative, NaN and Infinity own nothing')
  t.equal(hrwScore('c', { id: 'a', weight: 0 }), -Infinity)
  const cookies = makeCookies(5000, 9)
  const nodes = [{ id: 'a', weight: 1 }, { id: 'b', weight: 0 }, { id: 'c', weight: 1 }]
  t.ok(cookies.every(c => ownerOf(c, nodes) !== 'b'), 'a drained node (weight 0) owns no cookie')
  t.ok(cookies.every(c => rankNodes(c, nodes).length === 2), 'and is left out of the fallback order')
  t.ok(cookies.every(c => ownerOf(c, [{ id: 'x', weight: 1 }]) === 'x'), 'a single node owns everything')
  const dup = rankNodes('cookie', [{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }, { id: 'a', weight: 3 }])
  t.same([...dup].sort(), ['a', 'b'], 'a repeated id is ranked once')
  // Scores are finite and positive for positive weights, proportional to weight.
  const s1 = hrwScore('k', { id: 'n', weight: 1 })
  const s3 = hrwScore('k', { id: 'n', weight: 3 })
  t.ok(Number.isFinite(s1) && s1 > 0)
  t.ok(Math.abs(s3 / s1 - 3) < 1e-12)
})
