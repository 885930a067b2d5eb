import t from 'tap'
import fc from 'fast-check'
import { ChunkedDecoder } from '../../../../src/tunnel/codec/chunked.js'

function run (pieces: Buffer[], dec = new ChunkedDecoder()): { data: string, error?: string, done: boolean } {
  const out: Buffer[] = []
  let error: string | undefined
  let done = false
  for (const p of pieces) {
    const r = dec.push(p)
    out.push(r.data)
    if (r.error !== undefined) error = r.error
    done = r.done
  }
  return { data: Buffer.concat(out).toString('latin1'), ...(error === undefined ? {} : { error }), done }
}

const one = (s: string): ReturnType<typeof run> => run([Buffer.from(s, 'latin1')])

function encodeChunked (parts: Buffer[], opts: { ext?: boolean, lf?: boolean, trailer?: boolean } = {}): Buffer {
  const nl = opts.lf === true ? '\n' : '\r\n'
  const out: Buffer[] = []
  for (const p of parts) {
    if (p.length === 0) continue
    out.push(Buffer.from(`${p.length.toString(16)}${opts.ext === true ? ';name="v"' : ''}${nl}`), p, Buffer.from(nl))
  }
  out.push(Buffer.from(`0${nl}${opts.trailer === true ? `X-T: 1${nl}` : ''}${nl}`))
  return Buffer.concat(out)
}

t.test('table', async (tt) => {
  tt.same(one('5\r\nQUJDR\r\n0\r\n\r\n'), { data: 'QUJDR', done: true })
  tt.same(one('5;ext=1\r\nhello\r\n6 ; a ; b="x"\r\n world\r\n0\r\nTrailer: x\r\nMore: y\r\n\r\n'),
    { data: 'hello world', done: true }, 'extensions ignored, trailers skipped')
  tt.same(one('A\nabcdefghij\n0\n\n'), { data: 'abcdefghij', done: true }, 'bare LF, upper-case hex')
  tt.same(one('000a\r\nabcdefghij\r\n'), { data: 'abcdefghij', done: false },
    'leading zeros; not done without last chunk')
  tt.same(one('5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.0\r\n'), { data: 'hello', done: true },
    'bytes after the end are ignored')
  tt.match(one('zz\r\n'), { error: /bad chunk-size/, done: false })
  tt.match(one('\r\n'), { error: /bad chunk-size/ })
  tt.match(one('5\r\nhelloX\r\n'), { data: 'hello', error: /CRLF/ }, 'data before the error is returned')
  tt.match(one('123456789\r\n'), { error: /hex digits/ })
  tt.match(one('1;' + 'x'.repeat(2000) + '\r\n'), { error: /longer than 1024/ })
  tt.match(run([Buffer.from('1;' + 'x'.repeat(600)), Buffer.from('x'.repeat(600))]), { error: /longer than 1024/ },
    'size line limit across pushes')
  tt.match(one('0\r\n' + 'X: y\r\n'.repeat(2000)), { error: /trailer/ })
  tt.same(run([Buffer.from('3\r\nabc\r\n0\r\n\r\n')], new ChunkedDecoder({ maxTrailerBytes: 0 })),
    { data: 'abc', done: true }, 'limits overridable')
  const dec = new ChunkedDecoder()
  dec.push(Buffer.from('zz\r\n'))
  tt.match(dec.push(Buffer.from('5\r\nhello\r\n')), { data: Buffer.alloc(0), error: /bad chunk-size/ },
    'errors are sticky')
})

t.test('every split and 1 byte at a time', async (tt) => {
  const body = Buffer.from('T1BUSU9OUyBydHNwOi8vZ3cuZXhhbXBsZS5uZXQvbGl2ZS9jYW0xIFJUU1AvMS4wDQpDU2VxOiAxDQpV')
  const enc = encodeChunked([body.subarray(0, 30), body.subarray(30, 31), body.subarray(31)], {
    ext: true,
    trailer: true
  })
  let bad = 0
  for (let k = 0; k <= enc.length; k++) {
    const r = run([enc.subarray(0, k), enc.subarray(k)])
    if (r.data !== body.toString() || !r.done || r.error !== undefined) bad++
  }
  tt.equal(bad, 0)
  tt.same(run([...enc].map((b) => Buffer.from([b]))), { data: body.toString(), done: true })
})

t.test('property: random bodies, styles and splits', async (tt) => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { maxLength: 6 }),
    fc.record({ ext: fc.boolean(), lf: fc.boolean(), trailer: fc.boolean() }),
    fc.array(fc.nat(), { maxLength: 6 }),
    (parts, opts, cuts) => {
      const enc = encodeChunked(parts, opts)
      const points = [...new Set(cuts.map((c) => c % (enc.length + 1)))].sort((a, b) => a - b)
      const pieces: Buffer[] = []
      let prev = 0
      for (const p of points) { pieces.push(enc.subarray(prev, p)); prev = p }
      pieces.push(enc.subarray(prev))
      const r = run(pieces)
      return r.done && r.error === undefined && r.data === Buffer.concat(parts).toString('latin1')
    }), { seed: 9, numRuns: 300 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (arr) => {
    const r = run([Buffer.from(arr)])
    return typeof r.done === 'boolean'
  }), { seed: 10, numRuns: 500 })
  tt.pass('properties held')
})
