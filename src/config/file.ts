/** Reading a config file: YAML, or JSON by its `.json` name; a mapping at the top level. */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { TunnelgateError } from '../core/errors.js'
import { isObj, type Obj } from './refuse.js'

export function loadConfigFile (file: string): Obj {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch (err) {
    throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: cannot read '${file}': ${(err as Error).message}`)
  }
  const kind = file.endsWith('.json') ? 'JSON' : 'YAML'
  let parsed: unknown
  try {
    parsed = kind === 'JSON' ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${file}' is not valid ${kind}: ${(err as Error).message}`)
  }
  if (parsed === null || parsed === undefined) return {}
  if (!isObj(parsed)) {
    throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${file}' must hold a mapping at the top level`)
  }
  return parsed
}
