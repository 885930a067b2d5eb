/**
 * The configuration: defaults ← file (YAML or JSON) ← environment ← command line, validated against
 * the schema (src/config/schema.ts) and deep-frozen. The rest of the gateway imports it from here.
 */
import { mergeLayer } from './merge.js'
import type { Obj } from './refuse.js'
import { DEFAULTS, type Config } from './schema.js'
import { validateConfig } from './validate.js'

export { isLoopbackHost } from './checks.js'
export { envOverrides } from './environment.js'
export { loadConfigFile } from './file.js'
export {
  CLUSTER_SECRET_MIN, DEFAULTS, OPS_TOKEN_MIN, type BackendConfig, type Config, type RouteConfig
} from './schema.js'
export { validateConfig }

/** defaults ← file ← environment ← command line; then validate. */
export function buildConfig (layers: Obj[]): Config {
  const merged = structuredClone(DEFAULTS) as unknown as Obj
  for (const layer of layers) mergeLayer(merged, layer)
  return validateConfig(merged)
}
