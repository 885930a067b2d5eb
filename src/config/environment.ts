/**
 * Environment variables that override settings: each setting names its own in the schema (`env`);
 * the value is read as the setting's type (integers, `auto`, comma lists).
 */
import type { Obj } from './refuse.js'
import { ConfigSchema } from './schema.js'
import { settings, type Setting } from './walk.js'

const ENV_SETTINGS = [...settings(ConfigSchema)].filter(s => s.setting.env !== undefined)

export function envOverrides (env: NodeJS.ProcessEnv): Obj {
  const o: Obj = {}
  for (const { key, setting } of ENV_SETTINGS) {
    for (const name of setting.env!) {
      const raw = env[name]
      if (raw !== undefined) setAt(o, key, fromText(raw, setting))
    }
  }
  // The old variable still maps to admin.token, which is refused naming ops.token.
  if (env.TUNNELGATE_ADMIN_TOKEN !== undefined) o.admin = { token: env.TUNNELGATE_ADMIN_TOKEN }
  return o
}

function fromText (raw: string, s: Setting): unknown {
  if (s.type === 'array') return raw.split(',').map(v => v.trim()).filter(Boolean)
  const members = s.anyOf as Setting[] | undefined
  const takesInteger = s.type === 'integer' || members?.some(m => m.type === 'integer') === true
  // Text that is not a number stays text, so the refusal quotes what was written.
  return takesInteger && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw
}

function setAt (o: Obj, key: string, value: unknown): void {
  const path = key.split('.')
  let at = o
  for (const p of path.slice(0, -1)) at = (at[p] ??= {}) as Obj
  at[path.at(-1)!] = value
}
