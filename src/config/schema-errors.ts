/**
 * The one place where the schema library's errors become the configuration's messages: the key as the
 * file spells it (`backends[0].url`) and what is wrong, in words.
 */
import type { TSchema } from '@sinclair/typebox'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { Value } from '@sinclair/typebox/value'
import { MAX_INT, type SettingMeta } from './kinds.js'
import { fail } from './refuse.js'

/** Refuse `value` with the first thing `schema` finds wrong in it. */
export function assertSchema (schema: TSchema, value: unknown): void {
  const first = Value.Errors(schema, value).First()
  if (first === undefined) return
  const { key, message } = describeError(schema, first)
  fail(key, message)
}

type Schema = TSchema & SettingMeta

export function describeError (root: TSchema, e: ValueError): { key: string, message: string } {
  const segments = e.path.split('/').slice(1).map(s => s.replaceAll('~1', '/').replaceAll('~0', '~'))
  const chain = schemasAlong(root, segments)
  const keyOf = (n: number): string => segments.slice(0, n).reduce(
    (key, s, i) => chain[i]?.type === 'array' ? `${key}[${s}]` : key === '' ? s : `${key}.${s}`, '')
  const schema = e.schema as Schema
  const parent = chain[segments.length - 1]
  const own = e.type !== ValueErrorType.ObjectAdditionalProperties && e.type !== ValueErrorType.ObjectRequiredProperty
  // A list of plain values says once what its entries must be ("a list of host:port ...").
  if (own && schema.hint === undefined && parent?.type === 'array' && parent.hint !== undefined) {
    return { key: keyOf(segments.length - 1), message: parent.hint }
  }
  return { key: keyOf(segments.length), message: whatIsWrong(e, schema) }
}

/** The schema of each step of the path (index i: the schema that holds segment i), as far as it is declared. */
function schemasAlong (root: TSchema, segments: string[]): Array<Schema | undefined> {
  const chain: Array<Schema | undefined> = []
  let s: Schema | undefined = root
  for (const seg of segments) {
    chain.push(s)
    if (s?.type === 'array') s = s.items as Schema
    else if (s?.type === 'object') s = (s.properties as Record<string, Schema>)[seg]
    else s = undefined
  }
  chain.push(s)
  return chain
}

function whatIsWrong (e: ValueError, schema: Schema): string {
  const hinted = (fallback: string): string => {
    if (schema.hint === undefined) return fallback
    return schema.showValue === true ? `${schema.hint} (got ${JSON.stringify(e.value)})` : schema.hint
  }
  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties: return 'is not a known setting'
    case ValueErrorType.ObjectRequiredProperty: return `is required and must be ${describe(schema)}`
    case ValueErrorType.Object: return hinted('must be an object')
    case ValueErrorType.Array: return hinted('must be a list')
    case ValueErrorType.ArrayMinItems: return hinted(`must have at least ${String(schema.minItems)} entries`)
    case ValueErrorType.Boolean: return 'must be true or false'
    case ValueErrorType.Integer: return `must be an integer (got ${JSON.stringify(e.value)})`
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum: return `must be ${range(schema)} (got ${String(e.value)})`
    case ValueErrorType.String: return hinted('must be a string')
    case ValueErrorType.StringPattern: return hinted(`must match ${String(schema.pattern)}`)
    case ValueErrorType.StringMinLength: return hinted(`must be at least ${String(schema.minLength)} characters`)
    case ValueErrorType.Union: return oneOfMessage(schema.anyOf as Schema[], e.value)
    default: return `is not valid: ${e.message}`
  }
}

/**
 * A floor above 1 is the setting's own minimum and is said so; a floor of 0 or 1 only marks a count,
 * and the message gives the whole range.
 */
function range (s: Schema): string {
  const min = s.minimum as number
  const max = s.maximum as number
  return max === MAX_INT && min > 1 ? `at least ${min}` : `between ${min} and ${max}`
}

function describe (s: Schema): string {
  if (s.const !== undefined) return literal(s.const)
  if (s.type === 'integer') return `an integer ${range(s)}`
  if (s.type === 'string') return 'a string'
  if (s.type === 'boolean') return 'true or false'
  if (s.type === 'array') return 'a list'
  return 'an object'
}

/** Up to three literals read as a sentence; a longer list is named, with the value that is not in it. */
function oneOfMessage (members: Schema[], value: unknown): string {
  if (members.every(m => m.const !== undefined)) {
    const values = members.map(m => m.const as unknown)
    if (values.length <= 3) return `must be ${joinOr(values.map(literal))}`
    return `must be one of ${values.join(', ')} (got '${String(value)}')`
  }
  return `must be ${joinOr(members.map(describe))} (got ${JSON.stringify(value)})`
}

const literal = (v: unknown): string => typeof v === 'string' ? `'${v}'` : String(v)
const joinOr = (words: string[]): string =>
  words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)!}`
