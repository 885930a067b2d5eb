/**
 * A seeded PRNG (sfc32, seeded through splitmix32) and the choices the grammars make with it.
 * Each fuzz case gets its own generator derived from (run seed, case index), so one case can be
 * generated again without the ones before it.
 */

function splitmix32 (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor (seed: number) {
    const sm = splitmix32(seed)
    this.#a = sm(); this.#b = sm(); this.#c = sm(); this.#d = sm()
    for (let i = 0; i < 12; i++) this.u32()
  }

  /** The generator of case `index` of the run seeded with `seed`. */
  static forCase (seed: number, index: number): Rng {
    return new Rng((Math.imul(seed >>> 0, 0x2545f491) ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0)
  }

  u32 (): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0
    this.#d = (this.#d + 1) >>> 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) >>> 0
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0
    this.#c = (this.#c + t) >>> 0
    return t
  }

  /** A float in [0, 1). */
  float (): number { return this.u32() / 4294967296 }

  /** An integer in [lo, hi] (inclusive). */
  int (lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo + 1)) }

  /** An integer in [lo, hi], small values far more likely (sizes, counts, lengths). */
  small (lo: number, hi: number): number {
    const f = this.float()
    return lo + Math.floor(f * f * f * (hi - lo + 1))
  }

  chance (p: number): boolean { return this.float() < p }

  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list')
    return items[Math.floor(this.float() * items.length)]!
  }

  /** One value by weight: `[[3, a], [1, b]]` gives a three times out of four. */
  weighted<T> (table: ReadonlyArray<readonly [number, T]>): T {
    let total = 0
    for (const [w] of table) total += w
    let r = this.float() * total
    for (const [w, v] of table) { r -= w; if (r < 0) return v }
    return table[table.length - 1]![1]
  }

  bytes (n: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff
    return b
  }

  /** Characters drawn from `alphabet`. */
  string (alphabet: string, n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)]
    return s
  }

  shuffle<T> (items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      const x = items[i]!; items[i] = items[j]!; items[j] = x
    }
    return items
  }
}
