/**
 * Weighted rendezvous (highest-random-weight, HRW) hashing: which relay owns a tunnel cookie.
 *
 * Every portal computes the owner of an `x-sessioncookie` on its own, with no shared state, so the GET
 * and the POST of one tunnel meet on the same relay even when an L4 load balancer sends them to
 * different portals (docs/scaling.md, reference §4 "gateway-level rendezvous"). Rendezvous hashing is
 * minimally disruptive: removing a node moves exactly the cookies that node owned, and adding a node
 * moves to it only the cookies it now wins (≈ weight share of the new node), nothing else.
 *
 * Weights use the logarithmic method (Schindelhauer & Schomaker, "Weighted distributed hash tables"):
 *
 *   score(key, node) = -weight / ln(h),  h = uniform (0,1) value from hash64(key, node.id)
 *
 * and the owner is the node with the highest score. Node i then wins with probability
 * weight_i / Σ weight, and changing one node's weight moves keys only to or from that node.
 *
 * The hash (stable across processes, machines and versions — a change here is a cluster-wide
 * re-shuffle, so test/unit/balancer/hrw.test.ts pins golden values):
 *   1. bytes  = UTF-8(key) ‖ 0xFF ‖ UTF-8(node id). 0xFF never occurs in UTF-8, so the split is unambiguous.
 *   2. FNV-1a 64 over the bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
 *   3. The MurmurHash3 fmix64 finaliser (x ^= x>>>33; x *= 0xff51afd7ed558ccd; x ^= x>>>33;
 *      x *= 0xc4ceb9fe1a85ec53; x ^= x>>>33), because FNV alone mixes the last bytes poorly.
 *   4. h = (top 52 bits + 0.5) / 2^52, strictly inside (0, 1) (exact in a double; 53 bits could round to 1).
 * All 64-bit arithmetic is done on two unsigned 32-bit lanes (hi, lo) with Math.imul and exact
 * float products below 2^53 — no BigInt, no platform-dependent behaviour.
 *
 * Rules: nodes with a weight that is not a finite number > 0 own nothing (weight 0 = drained). Ties
 * (practically impossible) go to the lexicographically smaller id, so the result never depends on the
 * order of `nodes`. Ids should be unique; a repeated id is ranked once, at its best position.
 */

export interface HrwNode {
  /** Stable identity of the node (e.g. "relay-2" or "10.0.3.7:8081"); part of the hash. */
  id: string
  /** Relative share of keys; 0 (or any non-positive value) means the node owns nothing. */
  weight: number
}

const TWO32 = 0x1_0000_0000
const TWO52 = 2 ** 52

/** FNV-1a 64 state in two lanes. */
interface Lanes { hi: number, lo: number }

/** FNV-1a 64 offset basis 0xcbf29ce484222325. */
function fnvInit (): Lanes { return { hi: 0xcbf29ce4, lo: 0x84222325 } }

/** One FNV-1a step: x ^= byte; x *= 0x100000001b3 (= 2^40 + 0x1b3) mod 2^64. */
function fnvByte (s: Lanes, byte: number): void {
  const lo = (s.lo ^ byte) >>> 0
  const p = lo * 0x1b3 // < 2^41: exact
  const carry = Math.floor(p / TWO32)
  s.hi = (Math.imul(s.hi, 0x1b3) + carry + (lo << 8)) >>> 0 // x * 2^40 contributes lo << 8 to the high lane
  s.lo = p >>> 0
}

/** Feed the UTF-8 encoding of `str` without allocating. Lone surrogates encode as U+FFFD. */
function fnvString (s: Lanes, str: string): void {
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i)
    if (c < 0x80) { fnvByte(s, c); continue }
    if (c < 0x800) { fnvByte(s, 0xc0 | (c >> 6)); fnvByte(s, 0x80 | (c & 0x3f)); continue }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < str.length ? str.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
        fnvByte(s, 0xf0 | (c >> 18)); fnvByte(s, 0x80 | ((c >> 12) & 0x3f))
        fnvByte(s, 0x80 | ((c >> 6) & 0x3f)); fnvByte(s, 0x80 | (c & 0x3f))
        continue
      }
      c = 0xfffd
    }
    fnvByte(s, 0xe0 | (c >> 12)); fnvByte(s, 0x80 | ((c >> 6) & 0x3f)); fnvByte(s, 0x80 | (c & 0x3f))
  }
}

/** High 32 bits of the 64-bit product of two unsigned 32-bit numbers (16-bit limbs, exact). */
function mulHi32 (a: number, b: number): number {
  const a0 = a & 0xffff; const a1 = a >>> 16
  const b0 = b & 0xffff; const b1 = b >>> 16
  const t = a1 * b0 + ((a0 * b0) >>> 16) // < 2^32 + 2^16: exact
  const w1 = (t % 0x10000) + a0 * b1 // < 2^33: exact
  return (a1 * b1 + Math.floor(t / 0x10000) + Math.floor(w1 / 0x10000)) >>> 0
}

/** x = x * (mHi:mLo) mod 2^64, in place. */
function mul64 (x: Lanes, mHi: number, mLo: number): void {
  const hi = (mulHi32(x.lo, mLo) + Math.imul(x.hi, mLo) + Math.imul(x.lo, mHi)) >>> 0
  x.lo = Math.imul(x.lo, mLo) >>> 0
  x.hi = hi
}

/** x ^= x >>> 33 (shift by 33 = high lane shifted by 1 into the low lane). */
function xorShift33 (x: Lanes): void { x.lo = (x.lo ^ (x.hi >>> 1)) >>> 0 }

/** MurmurHash3 fmix64, in place. */
function fmix64 (x: Lanes): void {
  xorShift33(x)
  mul64(x, 0xff51afd7, 0xed558ccd)
  xorShift33(x)
  mul64(x, 0xc4ceb9fe, 0x1a85ec53)
  xorShift33(x)
}

/** State after UTF-8(key) ‖ 0xFF — shared by all nodes for one key. */
function keyState (key: string): Lanes {
  const s = fnvInit()
  fnvString(s, key)
  fnvByte(s, 0xff)
  return s
}

function finish (prefix: Lanes, id: string): Lanes {
  const s = { hi: prefix.hi, lo: prefix.lo }
  fnvString(s, id)
  fmix64(s)
  return s
}

/** The 64-bit rendezvous hash of (key, node id) as 16 lower-case hex digits (for logs and tests). */
export function hrwHash64Hex (key: string, id: string): string {
  const s = finish(keyState(key), id)
  return s.hi.toString(16).padStart(8, '0') + s.lo.toString(16).padStart(8, '0')
}

/** Uniform value strictly inside (0, 1) from the top 52 bits of the hash. */
function unit (s: Lanes): number {
  return ((s.hi * 0x100000) + (s.lo >>> 12) + 0.5) / TWO52
}

/** The weighted score of one node for a key (higher wins); -Infinity when the node owns nothing. */
export function hrwScore (key: string, node: HrwNode): number {
  return scoreWith(keyState(key), node)
}

function scoreWith (prefix: Lanes, node: HrwNode): number {
  if (!(node.weight > 0) || !Number.isFinite(node.weight)) return -Infinity
  return -node.weight / Math.log(unit(finish(prefix, node.id)))
}

/** The node that owns `key`, or null when no node has a positive weight. */
export function ownerOf (key: string, nodes: readonly HrwNode[]): string | null {
  const prefix = keyState(key)
  let best: string | null = null
  let bestScore = -Infinity
  for (const n of nodes) {
    const s = scoreWith(prefix, n)
    if (s === -Infinity) continue
    if (best === null || s > bestScore || (s === bestScore && n.id < best)) { best = n.id; bestScore = s }
  }
  return best
}

/**
 * All nodes with a positive weight, best first: [0] is the owner, the rest is the fallback order
 * (the owner if [0] is removed is exactly [1], and so on).
 */
export function rankNodes (key: string, nodes: readonly HrwNode[]): string[] {
  const prefix = keyState(key)
  const scored: Array<{ id: string, score: number }> = []
  for (const n of nodes) {
    const score = scoreWith(prefix, n)
    if (score !== -Infinity) scored.push({ id: n.id, score })
  }
  scored.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const seen = new Set<string>()
  const out: string[] = []
  for (const { id } of scored) {
    if (seen.has(id)) continue
    seen.add(id)
    out.push(id)
  }
  return out
}
