/**
 * The stack fuzzer's own pieces (test/fuzz/), without a gateway: a seed and a case index always
 * make the same case; the request-line grammar reaches line ends made of stray CRs (nothing lists
 * them, they come out of its parts); a crash's signature drops what changes between runs; ddmin
 * finds the one element that matters; a fixture reads back byte for byte; the descriptor tolerance
 * lets a leak that grows with the traffic through nowhere.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCase } from '../../fuzz/generate.js'
import { loadCorpus } from '../../fuzz/corpus.js'
import { Rng } from '../../fuzz/prng.js'
import { tunnelHead } from '../../fuzz/grammar/http.js'
import { serialize } from '../../fuzz/message.js'
import { crashSignature } from '../../fuzz/stack.js'
import { ddmin } from '../../fuzz/shrink.js'
import { loadFixture, saveFixture, type Fixture } from '../../fuzz/fixtures.js'
import { regenerate } from '../../fuzz/replay.js'
import { overBaseline, FD_SLACK } from '../../fuzz/resources.js'

const corpus = loadCorpus()
const bytesOf = (seed: number, i: number): string =>
  JSON.stringify(generateCase(seed, i, corpus),
    (_k, v: unknown) =>
      (v as { type?: string })?.type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('latin1') : v)

t.test('a case is a function of (seed, index)', async t => {
  t.equal(bytesOf(7, 123), bytesOf(7, 123), 'the same case again')
  t.not(bytesOf(7, 123), bytesOf(8, 123), 'another seed, another case')
  t.not(bytesOf(7, 123), bytesOf(7, 124), 'another index, another case')
  t.ok(corpus.length >= 6, `${corpus.length} captured GET/POST pairs in the corpus`)
})

t.test('the request-line grammar makes odd CR line ends', async t => {
  const rng = new Rng(42)
  const ends = new Set<string>()
  for (let i = 0; i < 20_000; i++) {
    const line = serialize(tunnelHead(rng, 'get', 'cookie0123456789')).toString('latin1').split('\n')[0]!
    ends.add(JSON.stringify(line.slice(line.search(/\r*$/))))
  }
  t.ok(ends.has('"\\r\\r"'), 'a request line ending in CR CR LF')
  t.ok(ends.has('"\\r"') && ends.has('""'), 'CR LF and bare LF too')
})

t.test('crash signatures keep the error and the function, not the values', async t => {
  const a = "file:///x/dist/a.js:1\n\nTypeError: publicBase is not an rtsp://authority/prefix URL: 'rtsp://h:2r080'\n" +
    '    at new UrlMapper (file:///x/dist/tunnel/codec/url-rewrite.js:62:19)\n    at f (file:///x/y.js:1:1)\n\n' +
    'Node.js v20\n'
  const b = a.replace('h:2r080',
    '[::1').replace('/x/dist/tunnel/codec/url-rewrite.js:62:19', '/y/src/tunnel/codec/url-rewrite.ts:89:48')
  t.equal(crashSignature(a),
    "TypeError: publicBase is not an rtsp://authority/prefix URL: '…' @ new UrlMapper (url-rewrite)")
  t.equal(crashSignature(b), crashSignature(a), 'other URL, source-mapped path: the same signature')
  t.equal(crashSignature(''), 'exited without an error on stderr')
})

t.test('ddmin keeps only what the failure needs', async t => {
  const items = Array.from({ length: 40 }, (_, i) => i)
  t.same(await ddmin(items, async sub => sub.includes(17)), [17])
  t.same((await ddmin(items, async sub => sub.includes(3) && sub.includes(31))).sort((a, b) => a - b), [3, 31])
})

t.test('a fixture reads back byte for byte', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-fixture-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const plan = generateCase(3, 9, corpus)
  const f: Fixture = {
    layout: 'all',
    oracle: 'crash',
    signature: 'TypeError: x @ f (g)',
    message: 'm',
    found: { seed: 3, afterMs: 1, date: 'd', commit: 'c' },
    shrunk: false,
    cases: [{ index: 9, atMs: 5, plan }],
    original: { seed: 3, cases: [[9, 5]] }
  }
  const saved = saveFixture(f, dir)
  const back = loadFixture(join(dir, saved.file.split('/').pop()!))
  t.equal(JSON.stringify(back.cases[0]!.plan), JSON.stringify(plan), 'every chunk, pause and flag')
  t.equal(JSON.stringify(regenerate(back.original)[0]), JSON.stringify(back.cases[0]),
    'the inputs as found, made again from seed and index')
  t.match(saved.replay, /^npm run fuzz -- --replay .*all-crash-typeerror-x-f-g-seed3\.json$/)
})

t.test('the descriptor tolerance', async t => {
  const base = [{ role: 'portal', pid: 1, fds: 68, rssKiB: 100_000 }]
  t.same(overBaseline(base, [{ ...base[0]!, fds: 68 + FD_SLACK }]), [], `within +${FD_SLACK}: held`)
  t.match(overBaseline(base, [{ ...base[0]!, fds: 310 }]).join(), /68 -> 310 descriptors/, 'a growing count: reported')
  t.match(overBaseline(base, []).join(), /gone/, 'a process that disappeared: reported')
})
