/**
 * The bench package's boundaries: it reaches tunnelgate only through the package's "exports" (never
 * by a path into ../src), imports nothing it does not declare, has no import cycle, and the gateway
 * imports nothing of it. The type-check's stand-ins for the exports (tsconfig.test.json "paths")
 * name the same modules as the exports do.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const benchSrc = join(root, 'bench', 'src')
const readJson = (file: string): any => JSON.parse(readFileSync(join(root, file), 'utf8').replace(/^\s*\/\/.*$/gm, ''))

/** Every module specifier a TypeScript file imports or re-exports (type-only ones too). */
function specifiers (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const clause = String.raw`(?:type\s+)?(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+(?:\s*,\s*\{[^}]*\})?)`
  const statement = new RegExp(
    String.raw`^(?:import|export)\s+${clause}\s+from\s*'([^']+)'|^import\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)`, 'gm')
  return [...text.matchAll(statement)].map(m => m[1] ?? m[2] ?? m[3]!)
}

function tsFiles (dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.ts')).map(f => join(dir, f))
}

t.test('the bench imports builtins, its own modules, and declared packages through their exports', async t => {
  const pkg = readJson('package.json')
  const deps = Object.keys(readJson('bench/package.json').dependencies)
  const exported = new Set(Object.keys(pkg.exports).map(k => k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`))
  const bad: string[] = []
  for (const file of tsFiles(benchSrc)) {
    for (const s of specifiers(file)) {
      const ok = s.startsWith('node:') ||
        /^\.\/[\w-]+\.js$/.test(s) ||
        (s.split('/')[0] === pkg.name ? exported.has(s) : deps.includes(s))
      if (!ok) bad.push(`${file.slice(root.length)}: '${s}'`)
    }
  }
  t.same(bad, [], 'no ../ paths, no undeclared package, no tunnelgate module outside its "exports"')
  t.ok(deps.includes(pkg.name), 'tunnelgate is a declared dependency of the bench')
})

t.test('no import cycle among the bench\'s modules', async t => {
  const graph = new Map<string, string[]>()
  for (const file of tsFiles(benchSrc)) {
    const name = file.slice(benchSrc.length + 1).replace(/\.ts$/, '')
    graph.set(name, specifiers(file).filter(s => s.startsWith('./')).map(s => s.slice(2).replace(/\.js$/, '')))
  }
  const cycles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 'done') return
    if (state.get(n) === 'open') { cycles.push([...path.slice(path.indexOf(n)), n].join(' > ')); return }
    state.set(n, 'open')
    for (const m of graph.get(n) ?? []) visit(m, [...path, n])
    state.set(n, 'done')
  }
  for (const n of graph.keys()) visit(n, [])
  t.same(cycles, [], 'the import graph of bench/src is acyclic')
  t.ok(graph.size > 10, 'the modules were found')
})

t.test('the gateway imports nothing of the bench', async t => {
  const bad = tsFiles(join(root, 'src'))
    .flatMap(f => specifiers(f).filter(s => /(^|\/)bench\//.test(s)).map(s => `${f.slice(root.length)}: '${s}'`))
  t.same(bad, [])
})

t.test('the type-check reads each export\'s source, the build its declarations', async t => {
  const exports = readJson('package.json').exports as Record<string, string | { types: string, default: string }>
  const paths = readJson('tsconfig.test.json').compilerOptions.paths as Record<string, string[]>
  const fromExports: Record<string, string[]> = {}
  for (const [k, v] of Object.entries(exports)) {
    if (typeof v === 'string') continue
    t.equal(v.types.replace(/\.d\.ts$/, '.js'), v.default, `${k}: types and code are one module`)
    fromExports[`tunnelgate/${k.slice(2)}`] = [v.default.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts')]
  }
  t.same(paths, fromExports)
})
