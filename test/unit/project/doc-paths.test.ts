/**
 * Every repository path the documentation names exists: each `src/…`, `test/…`, `bench/src/…`, `scripts/…`
 * or `eslint/…` path in docs/**\/*.md, README.md and docker/README.md is a file or folder of the checkout
 * (a path with `*`, `<…>` or a placeholder such as FILE in it: some file starts with the part before). Build output
 * (dist/) is not checked.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CHECKED = /(?<![\w./-])((?:src|test|bench\/src|scripts|eslint)\/[\w./*<>-]*)/g

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : [p]
  })
}

/** The paths `text` names that are not in the checkout, as `line: path`. */
export function missingPaths (
  text: string, exists: (path: string) => boolean, prefixed: (prefix: string) => boolean
): string[] {
  const out: string[] = []
  text.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(CHECKED)) {
      const path = m[1]!.replace(/[.,:;)]+$/, '')
      const wild = path.search(/[*<]|(?<=\/)[A-Z][A-Z0-9_]*(?=[./]|$)/)
      const ok = wild === -1 ? exists(path.replace(/\/$/, '')) : prefixed(path.slice(0, wild))
      if (!ok) out.push(`${i + 1}: ${path}`)
    }
  })
  return out
}

const repoFiles = [...files(join(ROOT, 'src')), ...files(join(ROOT, 'test')), ...files(join(ROOT, 'bench', 'src')),
  ...files(join(ROOT, 'scripts')), ...files(join(ROOT, 'eslint'))].map(f => relative(ROOT, f))
const exists = (p: string): boolean => existsSync(join(ROOT, p))
const prefixed = (p: string): boolean => repoFiles.some(f => f.startsWith(p))

t.test('the path finder', async t => {
  const yes = (): boolean => true
  const no = (): boolean => false
  t.same(missingPaths('see `src/a.ts`, and src/b/.', no, yes), ['1: src/a.ts', '1: src/b/'])
  t.same(missingPaths('x\n(`test/unit/*.test.ts`)', yes, no), ['2: test/unit/*.test.ts'], 'a glob needs a file')
  t.same(missingPaths('`test/fixtures/FILE.json`, src/<name>.ts', no, yes), [], 'placeholders stand for any file')
  t.same(missingPaths('bench/dist/main.js, dist/src/x, mysrc/y, `scripts/copy-assets.mjs`', yes, no), [])
  t.same(missingPaths('bench/dist/main.js, dist/src/x, mysrc/y', no, no), [], 'only the checked folders')
})

t.test('every path the docs name exists', async t => {
  const docs = [...files(join(ROOT, 'docs')).filter(f => f.endsWith('.md')), join(ROOT, 'README.md'),
    join(ROOT, 'docker', 'README.md')]
  let named = 0
  const missing: string[] = []
  for (const doc of docs) {
    const text = readFileSync(doc, 'utf8')
    named += [...text.matchAll(CHECKED)].length
    for (const m of missingPaths(text, exists, prefixed)) missing.push(`${relative(ROOT, doc)}:${m}`)
  }
  t.ok(named > 100, `${named} paths named`)
  t.same(missing, [], 'no path the docs name is missing')
})
