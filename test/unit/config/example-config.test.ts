import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { DEFAULTS, buildConfig, loadConfigFile } from '../../../src/config/config.js'

const EXAMPLE = new URL('../../../docker/tunnelgate.example.yml', import.meta.url).pathname

/** Leaf paths of a plain-object tree (arrays are leaves): { a: { b: 1 }, c: [] } → { 'a.b': 1, c: [] }. */
function leaves (o: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (typeof o === 'object' && o !== null && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o)) leaves(v, prefix ? `${prefix}.${k}` : k, out)
  } else {
    out.set(prefix, o)
  }
  return out
}

t.test('docker/tunnelgate.example.yml loads, validates and equals the defaults', async (t) => {
  const layer = loadConfigFile(EXAMPLE)
  const config = buildConfig([layer])
  t.ok(Object.isFrozen(config), 'validated (frozen) config')
  const set = leaves(layer)
  const defaults = leaves(DEFAULTS)
  t.ok(set.size >= 30, `${set.size} settings in the example`)
  for (const [key, value] of set) t.same(value, defaults.get(key), `${key} = ${JSON.stringify(value)} is the default`)
  t.same([...defaults.keys()].filter(k => !set.has(k)), [],
    'every default key is in the example (a new setting needs an entry)')
  t.same(config, DEFAULTS, 'loading the example gives exactly the defaults')
})

t.test('every setting in the example has a comment', async (t) => {
  const lines = readFileSync(EXAMPLE, 'utf8').split('\n')
  const uncommented: string[] = []
  lines.forEach((line, i) => {
    const m = /^(\s*)([A-Za-z]+):/.exec(line)
    if (m === null) return
    const isSection = line.trimEnd().endsWith(':') && lines[i + 1]?.startsWith(`${m[1]}  `)
    if (isSection && m[2] !== 'routes') return
    if (/^\s*- /.test(lines[i - 1] ?? '')) return // a later key of a list item (routes[0].backends)
    if (!/^\s*#/.test(lines[i - 1] ?? '')) uncommented.push(m[2]!)
  })
  t.same(uncommented, [], 'each key line is preceded by a comment line')
  // The commented-out optional key parses too when enabled.
  const enabled = readFileSync(EXAMPLE, 'utf8').replace('  # mediaDir: /srv/media', '  mediaDir: /srv/media')
  const optional = parseYaml(enabled) as Record<string, unknown>
  t.equal(buildConfig([optional]).origin.mediaDir, '/srv/media')
})
