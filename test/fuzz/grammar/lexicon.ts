/**
 * Lexical pieces every grammar draws from: line ends, separators, header values and numbers at
 * the edges, control bytes, cookies. A line end is built from parts (a few stray bytes, then a
 * terminator) rather than picked from a list of known-bad endings, so any short combination of
 * CR, LF, whitespace and control bytes can come out.
 */
import type { Rng } from '../prng.js'

/** Bytes that may stray in front of a line terminator, the usual mistakes first. */
const STRAY: ReadonlyArray<readonly [number, string]> = [
  [3, '\r'],
  [2, ' '],
  [1, '\t'],
  [1, '\x00'],
  [1, '\x0b'],
  [1, '\x0c'],
  [1, '\n']
]
const TERMINATORS = ['\r\n', '\n', '\r']

export function lineEnd (rng: Rng, oddness = 0.15): string {
  if (!rng.chance(oddness)) return '\r\n'
  let stray = ''
  for (let n = rng.small(0, 3); n > 0; n--) stray += rng.weighted(STRAY)
  return stray + rng.pick(TERMINATORS)
}

/** What separates a header name from its value. */
export function headerSep (rng: Rng): string {
  return rng.weighted([[90, ': '], [3, ':'], [2, ' : '], [2, ':\t'], [1, ': \t '], [1, ' :'], [1, '']])
}

/** What separates start-line tokens. */
export function tokenSep (rng: Rng): string {
  return rng.weighted([[94, ' '], [2, '  '], [2, '\t'], [1, ' \t'], [1, '']])
}

export const CONTROL = '\x00\x01\x07\x08\x0b\x0c\x0d\x0a\x1b\x7f\xff'

/** A numeric string at or past the edges parsers care about. */
export function edgeNumber (rng: Rng): string {
  return rng.pick(['0', '1', '-1', '00', '+1', '1.5', '0x10', '65535', '65536', '32767', '2147483647', '2147483648',
    '4294967295', '4294967296', '9007199254740993', '99999999999999999999', '1e3', ' 1', '1 ', '', 'NaN', '١'])
}

/** A header value meant to break something: empty, huge, control bytes, quotes, lists. */
export function oddValue (rng: Rng): string {
  return rng.weighted<() => string>([
    [4, () => ''],
    [3, () => edgeNumber(rng)],
    [3, () => 'x'.repeat(rng.pick([255, 256, 1024, 4096, 8200, 17000]))],
    [3, () => rng.string('abc' + CONTROL, rng.int(1, 12))],
    [2, () => '"' + rng.string('ab"\\;,=', rng.int(0, 10))],
    [2, () => rng.pick([';', ',', ';;', ',,', '=', '; a=b', 'a;b=;c', '\\'])],
    [2, () => rng.bytes(rng.int(1, 40)).toString('latin1')],
    [1, () => '%00%0d%0a%ff'],
    [1, () => 'a\r\nInjected: 1']
  ])()
}

/** A cookie: mostly the length real clients use, sometimes outside the accepted range or odd. */
export function cookie (rng: Rng): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  return rng.weighted<() => string>([
    [85, () => rng.string(alphabet, rng.int(12, 32))],
    [3, () => rng.string(alphabet, rng.int(0, 7))],
    [3, () => rng.string(alphabet, rng.int(129, 300))],
    [3, () => rng.string(alphabet + ' %;,"=', rng.int(8, 24))],
    [2, () => rng.string(alphabet, 8)],
    [2, () => rng.string(alphabet, 128)],
    [2, () => rng.bytes(rng.int(8, 20)).toString('latin1').replace(/[\r\n]/g, 'x')]
  ])()
}

/** Stream paths the gateway serves (or almost does). */
export function streamPath (rng: Rng): string {
  return rng.weighted([
    [30, '/demo'],
    [30, '/live/demo'],
    [4, '/'],
    [4, '/nothing'],
    [3, '/live/nothing'],
    [3, '/demo/trackID=1'],
    [2, '/live/demo/trackID=2'],
    [2, '/live/'],
    [2, '/live'],
    [1, '/DEMO'],
    [1, '/demo/'],
    [1, '/live//demo'],
    [1, '']
  ])
}
