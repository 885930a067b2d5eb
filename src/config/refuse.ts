/** How the configuration refuses a value (one coded error that names the key, no secret in it); plain-object test. */
import { TunnelgateError } from '../core/errors.js'
import { redactText } from '../core/redact.js'

export function fail (key: string, msg: string): never {
  throw new TunnelgateError('TG_ERR_CFG_INVALID', `config: '${key}' ${redactText(msg)}`, { key })
}

export type Obj = Record<string, unknown>
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
