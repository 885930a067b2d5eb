/**
 * Parser for the Prometheus text exposition format 0.0.4 (what prom-client's `registry.metrics()`
 * writes and what `/metrics` of every portal, relay and origin serves), used by the balancer to read
 * backend load. Pure: text in, samples out; scraping lives elsewhere.
 *
 * Grammar (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format), per line:
 *
 *   line        = comment | sample | blank
 *   comment     = "#" ws* ( "HELP" ws name ws docstring | "TYPE" ws name ws type | anything )
 *   sample      = name [ "{" [ label { "," label } [ "," ] ] "}" ] ws value [ ws timestamp ] [ ws "#" exemplar ]
 *   name        = [a-zA-Z_:][a-zA-Z0-9_:]*
 *   label       = labelname ws* "=" ws* '"' labelvalue '"'
 *   labelname   = [a-zA-Z_][a-zA-Z0-9_]*
 *   labelvalue  = UTF-8 where \ " and line feed are written \\ \" \n
 *   value       = Go ParseFloat syntax: decimal or exponent float, "NaN", "+Inf", "-Inf" (case-insensitive)
 *   timestamp   = integer milliseconds since the epoch (may be negative)
 *
 * Also accepted: the Prometheus 3 quoted-name form `{"metric.name", "label.x"="v"}`, trailing `\r`, tabs as
 * white space, and an OpenMetrics exemplar after the value (ignored). A malformed line throws a
 * SyntaxError that names the line number: a half-parsed scrape must not be taken as a low load.
 */

export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
  /** Milliseconds since the epoch, when the line carries a timestamp. */
  timestampMs?: number
}

const NAME_START = /[a-zA-Z_:]/
const NAME_CHAR = /[a-zA-Z0-9_:]/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const INTEGER = /^[+-]?\d+$/

class LineScanner {
  pos = 0
  constructor (readonly line: string, readonly lineNo: number) {}

  fail (msg: string): never {
    throw new SyntaxError(`prometheus text line ${this.lineNo}: ${msg} at ` +
      `column ${this.pos + 1}: ${JSON.stringify(this.line.slice(0, 200))}`)
  }

  get done (): boolean { return this.pos >= this.line.length }
  peek (): string { return this.line[this.pos] ?? '' }

  skipWs (): number {
    const start = this.pos
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++
    return this.pos - start
  }

  expect (ch: string): void {
    if (this.peek() !== ch) this.fail(`expected '${ch}'`)
    this.pos++
  }

  name (): string {
    const start = this.pos
    if (!NAME_START.test(this.peek())) this.fail('expected a metric name')
    this.pos++
    while (!this.done && NAME_CHAR.test(this.peek())) this.pos++
    return this.line.slice(start, this.pos)
  }

  labelName (): string {
    if (this.peek() === '"') return this.quoted()
    const start = this.pos
    while (!this.done && /[a-zA-Z0-9_]/.test(this.peek())) this.pos++
    const n = this.line.slice(start, this.pos)
    if (!LABEL_NAME.test(n)) this.fail('expected a label name')
    return n
  }

  /** A double-quoted string with the escapes \\ \" \n. */
  quoted (): string {
    this.expect('"')
    let out = ''
    let from = this.pos
    for (;;) {
      if (this.done) this.fail('unterminated quoted string')
      const c = this.line[this.pos]
      if (c === '"') break
      if (c === '\\') {
        out += this.line.slice(from, this.pos)
        const e = this.line[this.pos + 1]
        if (e === '\\') out += '\\'
        else if (e === '"') out += '"'
        else if (e === 'n') out += '\n'
        else this.fail(`invalid escape '\\${e ?? ''}' in a quoted string`)
        this.pos += 2
        from = this.pos
        continue
      }
      this.pos++
    }
    out += this.line.slice(from, this.pos)
    this.pos++
    return out
  }

  /** Next white-space-delimited token ('' at the end of the line). */
  token (): string {
    const start = this.pos
    while (!this.done && this.peek() !== ' ' && this.peek() !== '\t') this.pos++
    return this.line.slice(start, this.pos)
  }
}

/** Go strconv.ParseFloat as the Prometheus parser uses it (no hex, no underscores). */
export function parsePromValue (s: string): number | undefined {
  if (FLOAT.test(s)) return Number(s)
  const l = s.toLowerCase()
  if (l === 'nan') return NaN
  if (l === 'inf' || l === '+inf' || l === 'infinity' || l === '+infinity') return Infinity
  if (l === '-inf' || l === '-infinity') return -Infinity
  return undefined
}

function parseLabels (sc: LineScanner, labels: Record<string, string>, allowBareName: boolean): string | undefined {
  // After '{'. Returns a quoted metric name if the set starts with one (Prometheus 3 form).
  let quotedName: string | undefined
  sc.skipWs()
  let first = true
  while (sc.peek() !== '}') {
    const wasQuoted = sc.peek() === '"'
    const key = sc.labelName()
    sc.skipWs()
    if (allowBareName && first && wasQuoted && (sc.peek() === ',' || sc.peek() === '}')) { quotedName = key } else {
      sc.expect('=')
      sc.skipWs()
      const value = sc.quoted()
      if (Object.hasOwn(labels, key)) sc.fail(`duplicate label '${key}'`)
      Object.defineProperty(labels, key, {
        value, enumerable: true, writable: true, configurable: true
      }) // '__proto__' is a valid label name
      sc.skipWs()
    }
    first = false
    if (sc.peek() === ',') { sc.pos++; sc.skipWs(); continue }
    if (sc.peek() !== '}') sc.fail("expected ',' or '}'")
  }
  sc.pos++
  return quotedName
}

function parseSample (sc: LineScanner): PromSample {
  let name = ''
  const labels: Record<string, string> = {}
  if (sc.peek() === '{') {
    sc.pos++
    const q = parseLabels(sc, labels, true)
    if (q === undefined) sc.fail('expected a metric name')
    name = q
    if (sc.skipWs() === 0 && !sc.done) sc.fail('expected white space before the value')
  } else {
    name = sc.name()
    let ws = sc.skipWs()
    if (sc.peek() === '{') { sc.pos++; parseLabels(sc, labels, false); ws = sc.skipWs() }
    if (ws === 0 && !sc.done) sc.fail('expected white space before the value')
  }
  const rawValue = sc.token()
  const value = parsePromValue(rawValue)
  if (value === undefined) sc.fail(`invalid value '${rawValue}'`)
  const sample: PromSample = { name, labels, value }
  sc.skipWs()
  if (!sc.done && sc.peek() !== '#') {
    const ts = sc.token()
    if (!INTEGER.test(ts)) sc.fail(`invalid timestamp '${ts}'`)
    sample.timestampMs = Number(ts)
    sc.skipWs()
  }
  if (!sc.done && sc.peek() !== '#') sc.fail('unexpected text after the sample')
  return sample
}

/** Every sample of an exposition, in order. HELP/TYPE and other comments are skipped (checked for shape). */
export function parsePromText (text: string): PromSample[] {
  const out: PromSample[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!
    if (line.endsWith('\r')) line = line.slice(0, -1)
    const sc = new LineScanner(line, i + 1)
    sc.skipWs()
    if (sc.done) continue
    if (sc.peek() === '#') {
      sc.pos++
      sc.skipWs()
      const word = sc.token()
      if (word === 'HELP' || word === 'TYPE') {
        if (sc.skipWs() === 0) sc.fail(`# ${word} needs a metric name`)
        if (sc.peek() === '"') sc.quoted(); else sc.name()
        if (word === 'TYPE') {
          sc.skipWs()
          const type = sc.token()
          if (![
            'counter', 'gauge', 'histogram', 'summary', 'untyped', 'unknown', 'gaugehistogram', 'info', 'stateset'
          ].includes(type)) { sc.fail(`unknown metric type '${type}'`) }
        }
      }
      continue
    }
    out.push(parseSample(sc))
  }
  return out
}

function hasLabels (s: PromSample, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(labels)) if (!Object.hasOwn(s.labels, k) || s.labels[k] !== v) return false
  return true
}

/**
 * Sum of the samples named `name`, grouped by the value of `labelName` (e.g. sessions per backend
 * summed over every relay's scrape). Samples without that label are left out.
 */
export function sumBy (samples: readonly PromSample[], name: string, labelName: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const s of samples) {
    if (s.name !== name) continue
    if (!Object.hasOwn(s.labels, labelName)) continue
    const key = s.labels[labelName]!
    out.set(key, (out.get(key) ?? 0) + s.value)
  }
  return out
}

/**
 * Value of the first sample named `name` whose labels include every pair in `labels` (all samples of
 * that name match when `labels` is omitted); undefined when none matches.
 */
export function valueOf (
  samples: readonly PromSample[], name: string, labels: Readonly<Record<string, string>> = {}
): number | undefined {
  for (const s of samples) if (s.name === name && hasLabels(s, labels)) return s.value
  return undefined
}
