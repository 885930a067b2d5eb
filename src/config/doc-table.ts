/**
 * The settings table of docs/configuration.md, rendered from the schema: one row per setting with
 * its default, flags and environment variables, and its description.
 */
import { ConfigSchema } from './schema.js'
import { settings, type Setting } from './walk.js'

export const TABLE_BEGIN = '<!-- settings table: generated from src/config/schema.ts by `npm run docs:config` -->'
export const TABLE_END = '<!-- end of the generated settings table -->'

export function settingsTable (): string {
  const rows = ['| key | default | flag / env | meaning |', '|---|---|---|---|']
  for (const { key, setting, required } of settings(ConfigSchema)) {
    const cells = [`\`${key}\``, defaultText(setting, required), whereElse(setting), cell(setting.description ?? '')]
    rows.push(`| ${cells.join(' | ')} |`)
  }
  return rows.join('\n')
}

/** `doc` with the text between the table's markers replaced by `table`; null when the markers are missing. */
export function withTable (doc: string, table: string): string | null {
  const begin = doc.indexOf(TABLE_BEGIN)
  const end = doc.indexOf(TABLE_END)
  if (begin === -1 || end < begin) return null
  return `${doc.slice(0, begin + TABLE_BEGIN.length)}\n${table}\n${doc.slice(end)}`
}

function defaultText (s: Setting, required: boolean): string {
  if (s.docDefault !== undefined) return s.docDefault
  if (s.default !== undefined) return `\`${s.default === '' ? "''" : literal(s.default, false)}\``
  return required ? 'required' : ''
}

function whereElse (s: Setting): string {
  const flags = (s.cli ?? []).map(f => f === 'subcommand' ? f : `\`${f}\``)
  const env = (s.env ?? []).map(v => s.type === 'array' ? `\`${v}\` (comma list)` : `\`${v}\``)
  return [...flags, ...env].join(', ')
}

/** A default as one would write it in YAML flow style: `[{ path: '/', backends: [] }]`. */
function literal (v: unknown, quoted = true): string {
  if (Array.isArray(v)) return `[${v.map(x => literal(x)).join(', ')}]`
  if (typeof v === 'object' && v !== null) {
    return `{ ${Object.entries(v).map(([k, x]) => `${k}: ${literal(x)}`).join(', ')} }`
  }
  return typeof v === 'string' && quoted ? `'${v}'` : String(v)
}

const cell = (text: string): string => text.replaceAll('|', '\\|')
