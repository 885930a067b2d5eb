/**
 * docs/configuration.md's settings table is the schema's: this test renders it and compares.
 * `npm run docs:config` (TUNNELGATE_UPDATE_DOCS=1) writes the rendered table into the doc instead.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { settingsTable, withTable } from '../../../src/config/doc-table.js'
import { DEFAULTS } from '../../../src/config/config.js'
import { ConfigSchema } from '../../../src/config/schema.js'
import { settings } from '../../../src/config/walk.js'

const DOC = new URL('../../../docs/configuration.md', import.meta.url).pathname

t.test('the settings table in docs/configuration.md is the one the schema renders', async t => {
  const doc = readFileSync(DOC, 'utf8')
  const table = settingsTable()
  const updated = withTable(doc, table)
  if (updated === null) return t.fail('docs/configuration.md lost the markers around the settings table')
  if (process.env.TUNNELGATE_UPDATE_DOCS === '1' && updated !== doc) writeFileSync(DOC, updated)
  else t.equal(doc, updated, 'run `npm run docs:config` after changing a setting')
})

/** A leaf of the defaults as the table spells it. */
const spelled = (v: unknown): string =>
  typeof v === 'string' ? (v === '' ? "`''`" : `\`${v}\``) : `\`${JSON.stringify(v)}\``

t.test('every setting has a row with its real default and a meaning', async t => {
  const rows = new Map(readFileSync(DOC, 'utf8').split('\n')
    .map(l => /^\| `([^`]+)` \| (.*?) \| (.*?) \| (.*) \|$/.exec(l))
    .filter(m => m !== null)
    .map(m => [m[1]!, { default: m[2]!, meaning: m[4]! }]))
  const keys = [...settings(ConfigSchema)].map(s => s.key)
  t.same([...rows.keys()], keys, 'one row per declared setting, in declaration order')
  for (const key of keys) t.ok((rows.get(key)?.meaning.length ?? 0) > 10, `${key} has a meaning`)
  const leaves: Array<[string, unknown]> = []
  const walk = (o: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      const key = prefix === '' ? k : `${prefix}.${k}`
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) walk(v as Record<string, unknown>, key)
      else leaves.push([key, v])
    }
  }
  walk(DEFAULTS as unknown as Record<string, unknown>, '')
  t.ok(leaves.length > 100, `${leaves.length} defaults`)
  for (const [key, value] of leaves) {
    if (Array.isArray(value) && value.length > 0) continue // routes: a list of objects, checked below
    t.equal(rows.get(key)?.default, Array.isArray(value) ? '`[]`' : spelled(value), `${key}: the documented default`)
  }
  t.equal(rows.get('routes')?.default, "`[{ path: '/', backends: [] }]`")
})
