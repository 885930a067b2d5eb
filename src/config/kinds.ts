/**
 * The kinds of setting the schema is made of. Each call declares one setting: its type and bounds, its
 * default, its description (the one in docs/configuration.md) and where else it may be set.
 */
import {
  Type, type TArray, type TBoolean, type TInteger, type TLiteral, type TLiteralValue, type TObject, type TProperties,
  type TSchema, type TString, type TUnion
} from '@sinclair/typebox'

/** What a declaration may add to its type. TypeBox keeps these on the schema object. */
export interface SettingMeta {
  /** Command-line flags that set it ('subcommand' for the role). */
  cli?: string[]
  /** Environment variables that set it, lowest precedence first (src/config/environment.ts reads them). */
  env?: string[]
  /** The default in words, when it is derived from other settings. */
  docDefault?: string
  /** What is wrong with a value that has the right type but fails the pattern or length ("must be ..."). */
  hint?: string
  /** Append the refused value to the hint (never on a secret). */
  showValue?: boolean
}

/** Names of backends (RTSP and HTTP) in metrics, routes and the status page. */
export const BACKEND_NAME = {
  pattern: /^[A-Za-z0-9_.:\-[\]]{1,64}$/,
  hint: 'must be 1-64 characters of A-Z a-z 0-9 _ . : -'
}

/** Integers without an upper bound stop where numbers stop being exact. */
export const MAX_INT = Number.MAX_SAFE_INTEGER

export function int (def: number | undefined, bounds: { min: number, max?: number }, description: string,
  meta: SettingMeta = {}): TInteger {
  return Type.Integer({ ...defaultOf(def), minimum: bounds.min, maximum: bounds.max ?? MAX_INT, description, ...meta })
}

export function bool (def: boolean, description: string, meta: SettingMeta = {}): TBoolean {
  return Type.Boolean({ default: def, description, ...meta })
}

export function text (def: string | undefined, description: string,
  meta: SettingMeta & { pattern?: RegExp, minLength?: number } = {}): TString {
  const { pattern, ...rest } = meta
  const source = pattern === undefined ? {} : { pattern: pattern.source }
  return Type.String({ ...defaultOf(def), description, ...source, ...rest })
}

type Literals<T extends TLiteralValue[]> = { [K in keyof T]: TLiteral<T[K]> }

/** One of a few literal values. */
export function oneOf<const T extends TLiteralValue[]> (values: T, def: T[number] | undefined, description: string,
  meta: SettingMeta = {}): TUnion<Literals<T>> {
  const members = values.map(v => Type.Literal(v))
  return Type.Union(members, { ...defaultOf(def), description, ...meta }) as unknown as TUnion<Literals<T>>
}

export function list<T extends TSchema> (item: T, def: unknown[] | undefined, description: string,
  meta: SettingMeta & { minItems?: number } = {}): TArray<T> {
  return Type.Array(item, { ...defaultOf(def), description, ...meta })
}

/** A group of settings (an object in the file): every key is declared, any other is refused. */
export function section<T extends TProperties> (properties: T): TObject<T> {
  return Type.Object(properties, { additionalProperties: false })
}

/** One entry of a list of objects; `hint` says what an entry must be. */
export function entry<T extends TProperties> (properties: T, hint: string): TObject<T> {
  return Type.Object(properties, { additionalProperties: false, hint })
}

function defaultOf (def: unknown): { default?: unknown } {
  return def === undefined ? {} : { default: def }
}
