/**
 * No import cycle anywhere in src/: the module graph of every relative import (type-only ones too)
 * is acyclic. A cycle is reported with its modules in order.
 */
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url))

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Every cycle's modules (one cycle per strongly connected component of two or more, or a self-import). */
export function cycles (graph: Map<string, string[]>): string[][] {
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++
    stack.push(v); on.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!))
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = []
      for (let w = stack.pop()!; ; w = stack.pop()!) { on.delete(w); comp.push(w); if (w === v) break }
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(comp.reverse())
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v)
  return out
}

t.test('the cycle finder finds cycles', async t => {
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])).map(c => c.sort()),
    [['a', 'b', 'c']])
  t.same(cycles(new Map([['a', ['a']]])), [['a']], 'a self-import')
  t.same(cycles(new Map([['a', ['b']], ['b', []]])), [], 'a chain is no cycle')
})

t.test('src/ has no import cycle', async t => {
  const graph = new Map<string, string[]>()
  for (const f of files(SRC)) {
    const deps: string[] = []
    const imports = readFileSync(f, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)
    for (const m of imports) deps.push(normalize(join(dirname(f), m[1]!)).replace(/\.js$/, '.ts'))
    graph.set(f, deps)
  }
  t.ok(graph.size > 50, `${graph.size} modules`)
  t.same(cycles(graph).map(c => c.map(f => relative(SRC, f))), [], 'no cycle')
})
