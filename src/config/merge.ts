/**
 * Layering: each layer (file, environment, command line) is merged over the one below it, plain
 * objects key by key, lists and values replaced whole. Renamed keys are refused here, naming the new one.
 */
import { fail, isObj, type Obj } from './refuse.js'

/** Settings that were renamed: a config naming the old key is refused with the new one. */
const MOVED: Record<string, string> = {
  'admin.host': 'ops.host',
  'admin.port': 'ops.port',
  'admin.token': 'ops.token (environment: TUNNELGATE_OPS_TOKEN)'
}
const MOVED_WHY = 'the admin API is served on the ops listener with /metrics and the status page ' +
  '(docs/configuration.md)'

/** Merge a copy of `src` into `dst`. Unknown keys are left for the schema to refuse. */
export function mergeLayer (dst: Obj, src: Obj, path = ''): void {
  for (const [k, v] of Object.entries(src)) {
    const key = path ? `${path}.${k}` : k
    const moved = MOVED[key]
    if (moved !== undefined) fail(key, `has moved to '${moved}': ${MOVED_WHY}`)
    const below = dst[k]
    if (isObj(below) && isObj(v)) mergeLayer(below, v, key)
    else dst[k] = structuredClone(v)
  }
}

export function deepFreeze<T> (o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}
