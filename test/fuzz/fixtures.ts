/**
 * Regression fixtures: the inputs in flight when an oracle failed, as JSON files under
 * test/fixtures/fuzz/ that a replay reads. Bytes are stored as latin1 strings (lossless, and a
 * request line reads as itself: "GET / HTTP/1.1\r\n"). A fixture keeps the shrunk cases and the
 * original ones; inputs too many to store are kept as the generator range that makes them again.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LayoutName } from './layouts.js'
import type { CasePlan, Chunk, ConnPlan } from './plan.js'
import { ROOT } from './stack.js'

export const FIXTURES = fileURLToPath(new URL('../fixtures/fuzz/', import.meta.url))
const FORMAT = 'tunnelgate-fuzz/1'

/** Past this many cases a fixture keeps no bytes, only the generated inputs. */
export const MAX_STORED_CASES = 400

export type OracleName = 'crash' | 'healthz' | 'viewer' | 'resources'

/** A case as sent: its index in the run and when it started, relative to the first one kept. */
export interface TimedCase { index: number, atMs: number, plan: CasePlan }

/**
 * Generated cases by their place in a run: `cases` (index and start offset, the cases in flight at a
 * failure) or every case in [from, to) (a whole run's traffic, pumped as the run sent it).
 */
export type GeneratedInputs =
  { seed: number, cases: Array<[index: number, atMs: number]> } | { seed: number, from: number, to: number }

export interface Fixture {
  layout: LayoutName
  oracle: OracleName
  /** What failed, without the parts that change between runs (the crash's error and function). */
  signature: string
  message: string
  found: { seed: number, afterMs: number, date: string, commit: string }
  /** The inputs to replay (shrunk when `shrunk`); empty when they were too many to store as bytes. */
  cases: TimedCase[]
  shrunk: boolean
  /** The inputs as found (generated again by the generator of `found.commit`). */
  original: GeneratedInputs
}

interface JsonChunk { waitMs: number, latin1: string, encode?: Chunk['encode'], replies?: number }
type JsonConn = Omit<ConnPlan, 'chunks'> & { chunks: JsonChunk[] }
interface JsonCase { index: number, atMs: number, kind: string, conns: JsonConn[] }

function toJson (c: TimedCase): JsonCase {
  return {
    index: c.index,
    atMs: c.atMs,
    kind: c.plan.kind,
    conns: c.plan.conns.map(conn => ({
      ...conn,
      chunks: conn.chunks.map(ch => ({
        waitMs: ch.waitMs,
        latin1: ch.bytes.toString('latin1'),
        ...(ch.encode === undefined ? {} : { encode: ch.encode }),
        ...(ch.replies === undefined ? {} : { replies: ch.replies })
      }))
    }))
  }
}

function fromJson (j: JsonCase): TimedCase {
  return {
    index: j.index,
    atMs: j.atMs,
    plan: {
      kind: j.kind,
      conns: j.conns.map(conn => ({
        ...conn,
        chunks: conn.chunks.map(ch => ({
          waitMs: ch.waitMs,
          bytes: Buffer.from(ch.latin1, 'latin1'),
          ...(ch.encode === undefined ? {} : { encode: ch.encode }),
          ...(ch.replies === undefined ? {} : { replies: ch.replies })
        }))
      }))
    }
  }
}

export function commitId (): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

function slug (s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 48)
}

/** Write `f` to `dir` under a new name; returns the path (relative to the repository) and the replay command. */
export function saveFixture (f: Fixture, dir = FIXTURES): { file: string, replay: string } {
  mkdirSync(dir, { recursive: true })
  const base = `${f.layout}-${f.oracle}-${slug(f.signature)}-seed${f.found.seed}`
  let name = `${base}.json`
  for (let n = 2; existsSync(join(dir, name)); n++) name = `${base}-${n}.json`
  return rewriteFixture(join(dir, name), f)
}

/** Write `f` to `path` (replacing it). */
export function rewriteFixture (path: string, f: Fixture): { file: string, replay: string } {
  const file = relative(ROOT, path)
  const replay = `npm run fuzz -- --replay ${file}`
  const json = {
    format: FORMAT,
    layout: f.layout,
    oracle: f.oracle,
    signature: f.signature,
    message: f.message,
    found: f.found,
    replay,
    shrunk: f.shrunk,
    original: f.original,
    cases: f.cases.map(toJson)
  }
  writeFileSync(path, JSON.stringify(json, null, 1) + '\n')
  return { file, replay }
}

export function loadFixture (path: string): Fixture {
  const j = JSON.parse(readFileSync(path, 'utf8')) as Omit<Fixture, 'cases'> & { format: string, cases: JsonCase[] }
  if (j.format !== FORMAT) throw new Error(`${path}: not a ${FORMAT} fixture (format '${j.format}')`)
  const { cases, ...rest } = j
  return { ...rest, cases: cases.map(fromJson) }
}

/** Every fixture file in `dir`, sorted. */
export function listFixtures (dir = FIXTURES): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter(n => n.endsWith('.json')).sort().map(n => join(dir, n))
}

/** A saved fixture for the same layout, oracle and signature (the finding is known already). */
export function knownFixture (f: Pick<Fixture, 'layout' | 'oracle' | 'signature'>, dir = FIXTURES): string | null {
  for (const path of listFixtures(dir)) {
    try {
      const j = JSON.parse(readFileSync(path, 'utf8')) as Fixture
      if (j.layout === f.layout && j.oracle === f.oracle && j.signature === f.signature) return relative(ROOT, path)
    } catch {}
  }
  return null
}
