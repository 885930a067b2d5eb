/**
 * The flags and environment variables each setting names in the schema (and so in the docs' table)
 * really set it: through parseCli for flags, through envOverrides for variables.
 */
import t from 'tap'
import { parseCli } from '../../../src/cli.js'
import { buildConfig, envOverrides } from '../../../src/config/config.js'
import { ConfigSchema } from '../../../src/config/schema.js'
import { settings, type Setting } from '../../../src/config/walk.js'

const declared = [...settings(ConfigSchema)]

const at = (o: unknown, key: string): unknown =>
  key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o)

/** A value the setting accepts, as text and as the layer should carry it. */
function sample (s: Setting): { text: string, value: unknown } {
  if (s.type === 'array') return { text: 'dns:relay-a:8081', value: ['dns:relay-a:8081'] }
  if (s.type === 'integer') return { text: '8443', value: 8443 }
  const members = s.anyOf as Setting[] | undefined
  if (members?.some(m => m.type === 'integer') === true) return { text: '3', value: 3 }
  if (members !== undefined) return { text: String(members.at(-1)!.const), value: members.at(-1)!.const }
  return { text: 'sample-value-0123456789', value: 'sample-value-0123456789' }
}

t.test('every declared flag sets its setting', async t => {
  const withFlags = declared.filter(d => d.setting.cli !== undefined)
  t.ok(withFlags.length >= 12, `${withFlags.length} settings with flags`)
  for (const { key, setting } of withFlags) {
    for (const flag of setting.cli!) {
      if (flag === 'subcommand') {
        for (const role of ['portal', 'relay']) t.equal(parseCli([role]).layer.role, role, `${role} subcommand → role`)
      } else if (setting.type === 'boolean') {
        t.equal(at(parseCli([flag]).layer, key), !(setting.default as boolean), `${flag} → ${key}`)
      } else {
        const { text, value } = sample(setting)
        t.strictSame(at(parseCli([flag, text]).layer, key), value, `${flag} ${text} → ${key}`)
      }
    }
  }
})

t.test('every declared environment variable sets its setting', async t => {
  const withEnv = declared.filter(d => d.setting.env !== undefined)
  t.ok(withEnv.length >= 15, `${withEnv.length} settings with variables`)
  for (const { key, setting } of withEnv) {
    for (const name of setting.env!) {
      const { text, value } = sample(setting)
      t.strictSame(at(envOverrides({ [name]: text }), key), value, `${name}=${text} → ${key}`)
    }
  }
  t.strictSame(envOverrides({ TUNNELGATE_WORKERS: 'auto' }), { workers: 'auto' },
    'a word the setting names stays a word')
  t.strictSame(envOverrides({ PORT: '1', TUNNELGATE_PORT: '2' }), { port: 2 }, 'a later variable of one setting wins')
  t.strictSame(envOverrides({}), {}, 'no variable, no layer')
  t.throws(() => buildConfig([envOverrides({ TUNNELGATE_PORT: 'eighty' })]),
    { message: "config: 'port' must be an integer (got \"eighty\")" }, 'text that is no number is quoted as written')
})
