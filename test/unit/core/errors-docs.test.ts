import t from 'tap'
import { readFileSync } from 'node:fs'
import { ERROR_CODES, TunnelgateError } from '../../../src/core/errors.js'

t.test('docs/errors.md and ERROR_CODES list the same codes', async t => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
  const documented = new Set([...doc.matchAll(/^\| `(TG_ERR_[A-Z0-9_]+)` \|/gm)].map(m => m[1]!))
  const coded = new Set(Object.keys(ERROR_CODES))
  for (const c of coded) t.ok(documented.has(c), `${c} is documented`)
  for (const c of documented) t.ok(coded.has(c), `${c} exists in src/core/errors.ts`)
})

t.test('TunnelgateError carries its code and brand', async t => {
  const e = new TunnelgateError('TG_ERR_LISTEN', 'port taken', { port: 80 })
  t.equal(e.code, 'TG_ERR_LISTEN')
  t.ok(TunnelgateError.is(e))
  t.notOk(TunnelgateError.is(new Error('x')))
  t.same(e.toJSON(), { code: 'TG_ERR_LISTEN', message: 'port taken', port: 80 })
})
