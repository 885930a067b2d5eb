/**
 * Minimisation: while the failure still reproduces (`reproduces`, which replays against a gateway
 * and checks the same oracle and signature), drop whole cases, then connections, then chunks,
 * remove pauses, and cut lines, then bytes, out of the remaining chunks (delta debugging at each
 * level). Stops when nothing more goes or the time budget is spent, keeping the smallest input that
 * reproduced.
 */
import type { TimedCase } from './fixtures.js'
import type { Chunk, ConnPlan } from './plan.js'

/**
 * 'yes': the same failure; 'other': another one came first (inputs in flight often hold more than
 * one crash, and which fires first depends on timing); 'no': none.
 */
export type Outcome = 'yes' | 'other' | 'no'
export type Reproduces = (cases: TimedCase[]) => Promise<Outcome>

/**
 * Delta debugging (Zeller's ddmin) over `items`; `test` says whether a subset still fails. Gives up
 * (keeping what it has) once `stop()` says so.
 */
export async function ddmin<T> (
  items: T[],
  test: (sub: T[]) => Promise<boolean>,
  stop: () => boolean = () => false
): Promise<T[]> {
  let n = 2
  while (items.length >= 2 && !stop()) {
    const size = Math.ceil(items.length / n)
    const parts = Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
      items.slice(i * size, (i + 1) * size)
    )
    let next: T[] | null = null
    for (const p of parts) if (await test(p)) { next = p; break }
    if (next !== null) {
      items = next
      n = 2
      continue
    }
    if (parts.length > 2) {
      for (let i = 0; i < parts.length && !stop(); i++) {
        const comp = parts.filter((_, j) => j !== i).flat()
        if (await test(comp)) {
          next = comp
          break
        }
      }
      if (next !== null) {
        items = next
        n = Math.max(2, n - 1)
        continue
      }
    }
    if (n >= items.length) break
    n = Math.min(items.length, n * 2)
  }
  return items
}

function withConns (c: TimedCase, conns: ConnPlan[]): TimedCase {
  return { ...c, plan: { ...c.plan, conns } }
}

function mapConns (cases: TimedCase[], f: (c: ConnPlan) => ConnPlan): TimedCase[] {
  return cases.map(c => withConns(c, c.plan.conns.map(f)))
}

/** Replace connection `ci` of case `ki` (by position) with `conn`. */
function replaceConn (cases: TimedCase[], ki: number, ci: number, conn: ConnPlan): TimedCase[] {
  return cases.map((c, k) => k !== ki ? c : withConns(c, c.plan.conns.map((x, i) => i === ci ? conn : x)))
}

/** `b` cut after each LF (the pieces concatenate back to `b`). */
function lines (b: Buffer): Buffer[] {
  const out: Buffer[] = []
  let from = 0
  for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) {
    out.push(b.subarray(from, i + 1))
    from = i + 1
  }
  if (from < b.length) out.push(b.subarray(from))
  return out
}

/** Chunks written back to back (no pause, no wait for replies, the same encoding) as one write. */
function coalesce (chunks: Chunk[]): Chunk[] {
  const out: Chunk[] = []
  for (const ch of chunks) {
    const prev = out[out.length - 1]
    if (
      prev !== undefined &&
      ch.waitMs === 0 &&
      ch.replies === undefined &&
      ch.encode === prev.encode &&
      ch.encode === undefined
    ) { out[out.length - 1] = { ...prev, bytes: Buffer.concat([prev.bytes, ch.bytes]) } } else out.push(ch)
  }
  return out
}

/** A failure that depends on timing may not show on every replay: the inputs as found get this many. */
const FIRST_TRIES = 3

export async function shrink (
  start: TimedCase[],
  reproduces: Reproduces,
  budgetMs: number,
  log: (s: string) => void = () => {}
): Promise<{ cases: TimedCase[], attempts: number }> {
  const deadline = Date.now() + budgetMs
  const expired = (): boolean => Date.now() > deadline
  let best = start
  let attempts = 0
  let other = false
  const test = async (cand: TimedCase[]): Promise<boolean> => {
    if (expired() || cand.length === 0) return false
    attempts++
    const r = await reproduces(cand)
    if (r === 'other') other = true
    if (r === 'yes') best = cand
    return r === 'yes'
  }
  // Bytes written back to back as one write (what the gateway most likely read at once), short
  // holds, then no pauses and no waiting for replies: each step makes the later attempts faster.
  const coalesced = mapConns(best, c => ({ ...c, chunks: coalesce(c.chunks) }))
  for (let i = 0; i < FIRST_TRIES && best === start; i++) await test(coalesced)
  for (let i = 0; i < FIRST_TRIES && best === start; i++) await test(start)
  // Another failure masking this one: subsets may still show it alone.
  if (best === start && other) await ddmin(start, sub => test(sub), expired)
  if (best === start && attempts > 0) {
    log(`shrink: did not reproduce in ${attempts} replays`)
    return { cases: start, attempts }
  }
  await test(mapConns(best, c => ({ ...c, holdMs: Math.min(c.holdMs, 300) })))
  await test(mapConns(best, c => ({ ...c, chunks: c.chunks.map(({ replies: _, ...ch }) => ({ ...ch, waitMs: 0 })) })))
  await ddmin(best, sub => test(sub), expired)
  log(`shrink: ${best.length} of ${start.length} cases left after ${attempts} attempts`)
  await test(best.map(c => ({ ...c, atMs: 0 })))
  for (let k = 0; k < best.length && !expired(); k++) {
    const kept = best[k]!.plan.conns
    if (kept.length > 1) await ddmin(kept, sub => test(best.map((c, i) => i === k ? withConns(c, sub) : c)), expired)
    for (let ci = 0; ci < best[k]!.plan.conns.length && !expired(); ci++) {
      const conn = (): ConnPlan => best[k]!.plan.conns[ci]!
      await test(replaceConn(best, k, ci, { ...conn(), startMs: 0 }))
      await ddmin(conn().chunks, sub => test(replaceConn(best, k, ci, { ...conn(), chunks: sub })), expired)
      await test(replaceConn(best, k, ci, { ...conn(), chunks: conn().chunks.map(ch => ({ ...ch, waitMs: 0 })) }))
      for (let chi = 0; chi < conn().chunks.length && !expired(); chi++) {
        const withBytes = (b: Buffer): TimedCase[] =>
          replaceConn(best, k, ci, {
            ...conn(),
            chunks: conn().chunks.map((ch, i) => i === chi ? { ...ch, bytes: b } : ch)
          })
        const chunk = (): Chunk => conn().chunks[chi]!
        // Whole lines first (headers, messages), then single bytes of what is left.
        await ddmin(lines(chunk().bytes), sub => test(withBytes(Buffer.concat(sub))), expired)
        if (chunk().bytes.length <= 4096) {
          await ddmin([...chunk().bytes], sub => test(withBytes(Buffer.from(sub))), expired)
        }
      }
    }
  }
  log(
    `shrink: done after ${attempts} attempts: ${best.length} case(s), ${
      best.reduce((n, c) => n + c.plan.conns.length, 0)} connection(s), ${
      best.reduce((n, c) => n + c.plan.conns.reduce(
        (m, x) => m + x.chunks.reduce((b, ch) => b + ch.bytes.length, 0), 0), 0)} bytes`
  )
  return { cases: best, attempts }
}
