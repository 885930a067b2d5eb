/**
 * Validation of a merged config: shorthands expanded, list entries given their defaults, the schema,
 * then the rules between settings; the result is deep-frozen.
 */
import type { Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { checkConfig } from './checks.js'
import { deepFreeze } from './merge.js'
import { isObj, type Obj } from './refuse.js'
import { assertSchema } from './schema-errors.js'
import { ConfigSchema, type Config } from './schema.js'

/** Validate a merged config object; returns a deep-frozen Config. `raw` is not changed. */
export function validateConfig (raw: Obj): Config {
  const c = structuredClone(raw)
  expandUrlShorthands(c)
  const filled = Value.Default(ConfigSchema, c)
  assertSchema(ConfigSchema, filled)
  return deepFreeze(checkConfig(filled as Static<typeof ConfigSchema>))
}

/** A backend may be written as its URL alone: `rtsp://h:554` is `{ url: 'rtsp://h:554' }` (HTTP routes' too). */
function expandUrlShorthands (c: Obj): void {
  const expand = (list: unknown): void => {
    if (Array.isArray(list)) list.forEach((b, i) => { if (typeof b === 'string') list[i] = { url: b } })
  }
  expand(c.backends)
  if (Array.isArray(c.httpRoutes)) for (const r of c.httpRoutes) if (isObj(r)) expand(r.backends)
}
