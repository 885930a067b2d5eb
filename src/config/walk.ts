/** Walking the schema's declared settings in declaration order (the order of the docs' table). */
import type { TSchema } from '@sinclair/typebox'
import type { SettingMeta } from './kinds.js'

export type Setting = TSchema & SettingMeta
export interface DeclaredSetting { key: string, setting: Setting, required: boolean }

/**
 * Each declared setting with its key (`limits.httpHeadBytes`, `backends[].url`): every value and
 * list; the fields of a list's entries follow the list. Groups of settings are walked, not listed.
 */
export function * settings (schema: TSchema, prefix = ''): Generator<DeclaredSetting> {
  const properties = schema.properties as Record<string, Setting>
  const required = new Set<string>(schema.required as string[] | undefined ?? [])
  for (const [name, setting] of Object.entries(properties)) {
    const key = prefix === '' ? name : `${prefix}.${name}`
    if (setting.type === 'object') { yield * settings(setting, key); continue }
    yield { key, setting, required: required.has(name) }
    const items = setting.type === 'array' ? setting.items as Setting : undefined
    if (items?.type === 'object') yield * settings(items, `${key}[]`)
  }
}
