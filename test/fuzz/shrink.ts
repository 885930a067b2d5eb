/**
 * Minimisation: while the failure still reproduces (`reproduces`, which replays against a gateway
 * and checks the same oracle and signature), drop whole cases, then connections, then chunks,
 * remove pauses, and cut bytes out of the remaining chunks (delta debugging at each level). Stops
 * when nothing more goes or the time budget is spent, keeping the smallest input that reproduced.
 */
import type { TimedCase } from './fixtures.js'
import type { Chunk, ConnPlan } from './plan.js'

export type Reproduces = (cases: TimedCase[]) => Promise<boolean>

/** Delta debugging (Zeller's ddmin) over `items`; `test` says whether a subset still fails. */
export async function ddmin<T> (items: T[], test: (sub: T[]) => Promise<boolean>): Promise<T[]> {
  let n = 2
  while (items.length >= 2) {
    const size = Math.ceil(items.length / n)
    const parts = Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))
    let next: T[] | null = null
    for (const p of parts) if (await test(p)) { next = p; break }
    if (next !== null) { items = next; n = 2; continue }
    if (parts.length > 2) {
      for (let i = 0; i < parts.length; i++) {
        const comp = parts.filter((_, j) => j !== i).flat()
        if (await test(comp)) { next = comp; break }
      }
      if (next !== null) { items = next; n = Math.max(2, n - 1); continue }
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
  for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) { out.push(b.subarray(from, i + 1)); from = i + 1 }
  if (from < b.length) out.push(b.subarray(from))
  return out
}

export async function shrink (start: TimedCase[], reproduces: Reproduces, budgetMs: number, log: (s: string) => void = () => {}): Promise<{ cases: TimedCase[], attempts: number }> {
  const deadline = Date.now() + budgetMs
  let best = start
  let attempts = 0
  const test = async (cand: TimedCase[]): Promise<boolean> => {
    if (Date.now() > deadline || cand.length === 0) return false
    attempts++
    const ok = await reproduces(cand)
    if (ok) best = cand
    return ok
  }
  // Short holds, then no pauses and no waiting for replies: every later attempt takes less time.
  await test(mapConns(best, c => ({ ...c, holdMs: Math.min(c.holdMs, 300) })))
  await test(mapConns(best, c => ({ ...c, chunks: c.chunks.map(({ replies: _, ...ch }) => ({ ...ch, waitMs: 0 })) })))
  await ddmin(best, sub => test(sub))
  log(`shrink: ${best.length} of ${start.length} cases left after ${attempts} attempts`)
  await test(best.map(c => ({ ...c, atMs: 0 })))
  for (let k = 0; k < best.length; k++) {
    const kept = best[k]!.plan.conns
    if (kept.length > 1) await ddmin(kept, sub => test(best.map((c, i) => i === k ? withConns(c, sub) : c)))
    for (let ci = 0; ci < best[k]!.plan.conns.length; ci++) {
      const conn = (): ConnPlan => best[k]!.plan.conns[ci]!
      await test(replaceConn(best, k, ci, { ...conn(), startMs: 0 }))
      await ddmin(conn().chunks, sub => test(replaceConn(best, k, ci, { ...conn(), chunks: sub })))
      await test(replaceConn(best, k, ci, { ...conn(), chunks: conn().chunks.map(ch => ({ ...ch, waitMs: 0 })) }))
      for (let chi = 0; chi < conn().chunks.length; chi++) {
        const withBytes = (b: Buffer): TimedCase[] => replaceConn(best, k, ci, { ...conn(), chunks: conn().chunks.map((ch, i) => i === chi ? { ...ch, bytes: b } : ch) })
        const chunk = (): Chunk => conn().chunks[chi]!
        // Whole lines first (headers, messages), then single bytes of what is left.
        await ddmin(lines(chunk().bytes), sub => test(withBytes(Buffer.concat(sub))))
        if (chunk().bytes.length <= 4096) await ddmin([...chunk().bytes], sub => test(withBytes(Buffer.from(sub))))
      }
    }
  }
  log(`shrink: done after ${attempts} attempts: ${best.length} case(s), ${best.reduce((n, c) => n + c.plan.conns.length, 0)} connection(s), ${best.reduce((n, c) => n + c.plan.conns.reduce((m, x) => m + x.chunks.reduce((b, ch) => b + ch.bytes.length, 0), 0), 0)} bytes`)
  return { cases: best, attempts }
}
