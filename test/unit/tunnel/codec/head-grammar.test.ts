/**
 * The one head grammar (src/tunnel/codec/head-grammar.ts) as the front door and the RTSP demuxer
 * use it: every line terminator variant and every control byte, in the request line and in field
 * lines, gives a coded refusal and never a throw; the lines that are legal parse the same in both.
 */
import t from 'tap'
import fc from 'fast-check'
import { ERROR_CODES } from '../../../../src/core/errors.js'
import { parseHttpHead } from '../../../../src/tunnel/codec/http-head.js'
import { RtspDemuxer } from '../../../../src/tunnel/codec/demux.js'
import { parseFieldLines, parseRequestLine, splitLines } from '../../../../src/tunnel/codec/head-grammar.js'

const codes = new Set(Object.keys(ERROR_CODES))
const http = (s: string): ReturnType<typeof parseHttpHead> => parseHttpHead(Buffer.from(s, 'latin1'))

t.test('request lines with stray CRs are refused, never thrown on', async t => {
  for (const input of [
    'GET / HTTP/1.1\r\r\n\r\n',
    'GET / HTTP/1.1\r\r\r\n\r\n',
    'GET / HTTP/1.1\r\rX\r\n\r\n',
    'GET /\r HTTP/1.1\r\n\r\n',
    'GET\r/ HTTP/1.1\r\n\r\n',
    '\rGET / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\nA: b\r\r\n\r\n',
    'GET / HTTP/1.1\r\nA\r: b\r\n\r\n'
  ]) {
    let r: ReturnType<typeof parseHttpHead> | undefined
    t.doesNotThrow(() => { r = http(input) }, JSON.stringify(input))
    t.match(r, { state: 'error', code: 'TG_ERR_HTTP_HEAD_MALFORMED' }, `refused: ${JSON.stringify(input)}`)
  }
  // The early check (only the request line has arrived) and the full parse agree.
  t.match(http('GET / HTTP/1.1\r\r\n'), { state: 'error', code: 'TG_ERR_HTTP_HEAD_MALFORMED' },
    'refused before the head ends')
})

t.test('every control byte but HTAB is refused in a field value; obs-text and HTAB pass', async t => {
  for (let c = 0; c < 0x20; c++) {
    if (c === 0x0a) continue
    const r = http(`GET / HTTP/1.0\r\nX-A: a${String.fromCharCode(c)}b\r\n\r\n`)
    if (c === 0x09) t.match(r, { state: 'ok' }, 'HTAB allowed')
    else t.match(r, { state: 'error', code: 'TG_ERR_HTTP_HEAD_MALFORMED' }, `0x${c.toString(16)} refused`)
  }
  t.match(http('GET / HTTP/1.0\r\nX-A: a\x7fb\r\n\r\n'), { state: 'error' }, 'DEL refused')
  t.match(http('GET / HTTP/1.0\r\nX-A: caf\xe9\r\n\r\n'), { state: 'ok' }, 'obs-text allowed')
  t.match(http('GET / HTTP/1.0\r\n X-A: b\r\n\r\n'), { state: 'error' }, 'whitespace before the first field line')
  t.match(http('GET / HTTP/1.0\r\nX-A : b\r\n\r\n'), { state: 'error' }, 'whitespace before the colon')
  t.match(http('GET /caf\xe9 HTTP/1.0\r\n\r\n'), { state: 'ok' }, 'raw UTF-8 in the target')
})

t.test('the RTSP demuxer uses the same grammar: controls in heads are a coded 400, never forwarded', async t => {
  for (const bad of ['\r', '\x00', '\x0b', '\x0c', '\x7f']) {
    const d = new RtspDemuxer()
    const units =
      d.push(Buffer.from(`SETUP rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\nUser-Agent: a${bad}Transport: RTP/AVP;unicast;client_port=9000-9001\r\n\r\nOPTIONS * RTSP/1.0\r\nCSeq: 4\r\n\r\n`,
        'latin1'))
    t.match(units[0], { kind: 'error', code: 'TG_ERR_RTSP_MALFORMED', fatal: false, cseq: '3' },
      `${JSON.stringify(bad)} in a value`)
    t.match(units[1], { kind: 'request', method: 'OPTIONS' }, 'the next message still parses')
  }
  const r = new RtspDemuxer().push(Buffer.from('RTSP/1.0 200 OK\r\rCSeq: 1\r\n\r\n', 'latin1'))
  t.match(r[0], { kind: 'error', code: 'TG_ERR_RTSP_MALFORMED' }, 'a bare CR in a status line')
})

t.test('property: heads built from random line terminators and bytes never throw', async t => {
  const eol = fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', '\n\r', '\r\r', '', '\r\n\r\n')
  const sp = fc.constantFrom(' ', ' ', ' ', '  ', '\t', '\r', '', ' \r')
  const odd = fc.constantFrom('', '', '', '\x00', '\x7f', '\xff', '\r', '\x0b', ':')
  const word = (words: string[]): fc.Arbitrary<string> =>
    fc.tuple(fc.constantFrom(...words), odd).map(([w, o]) => w + o)
  const requestLine = fc.tuple(word(['GET', 'POST', 'OPTIONS', 'SETUP', 'G=T']), sp,
    word(['/', '/live/demo', 'rtsp://h/x', '*', '/?token=a']), sp,
    word(['HTTP/1.1', 'HTTP/1.0', 'RTSP/1.0', 'HTTP/2']), eol).map(p => p.join(''))
  const statusLine = fc.tuple(word(['RTSP/1.0', 'RTSP/2.0']), sp, word(['200', '404', '2000']), sp, word(['OK', '']),
    eol).map(p => p.join(''))
  const fieldLine = fc.tuple(fc.constantFrom('', ' ', '\t'),
    word(['Host', 'x-sessioncookie', 'CSeq', 'Content-Length', 'Bad Name', '']), fc.constantFrom(':', ': ', ' :', ''),
    word(['v', '1', 'abc def', '']), eol).map(p => p.join(''))
  const head = fc.tuple(fc.constantFrom('', '\r\n', '\n', '\r'), fc.oneof(requestLine, statusLine),
    fc.array(fieldLine, { maxLength: 4 }), eol)
    .map(([lead, first, fields, end]) => lead + first + fields.join('') + end)
  // A valid head with one to three byte-level edits (insert a separator byte, delete, duplicate).
  const valid = fc.constantFrom('GET / HTTP/1.1\r\nHost: h\r\n\r\n',
    'GET /live/demo HTTP/1.0\r\nx-sessioncookie: abcdefgh\r\n\r\n',
    'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n', 'RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n', 'GET / HTTP/1.1\n\n')
  const edit = fc.record({
    at: fc.nat(),
    op: fc.constantFrom('insert', 'delete', 'dup'),
    byte: fc.constantFrom('\r', '\n', ' ', '\t', '\x00', ':', '\x7f')
  })
  const mutated = fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([v, edits]) => {
    let x: string = v
    for (const e of edits) {
      const i = e.at % (x.length + 1)
      x = e.op === 'insert'
        ? x.slice(0, i) + e.byte + x.slice(i)
        : e.op === 'delete'
          ? x.slice(0, i) +
        x.slice(i + 1)
          : x.slice(0, i) + x.slice(i, i + 1) + x.slice(i)
    }
    return x
  })
  fc.assert(fc.property(fc.oneof(head, mutated), text => {
    const h = parseHttpHead(Buffer.from(text, 'latin1'))
    if (h.state === 'error' && !codes.has(h.code)) return false
    for (const u of new RtspDemuxer().push(Buffer.from(text, 'latin1'))) {
      if (u.kind === 'error' && !codes.has(u.code)) return false
    }
    return true
  }), { seed: 19, numRuns: 20000 })
  t.pass('no throw, only known codes')
})

t.test('grammar pieces', async t => {
  t.same(splitLines('a\r\nb\nc'), { ok: true, value: ['a', 'b', 'c'] })
  t.match(splitLines('a\rb'), { ok: false })
  t.match(parseRequestLine('GET / HTTP/1.1', /^HTTP\/\d\.\d$/), {
    ok: true,
    value: { method: 'GET', target: '/', version: 'HTTP/1.1' }
  })
  t.match(parseRequestLine('GET  / HTTP/1.1', /^HTTP\/\d\.\d$/), { ok: false })
  t.match(parseRequestLine('GET / HTTP/1.1 ', /^HTTP\/\d\.\d$/), { ok: false })
  t.match(parseFieldLines(['x', 'A: 1', ' 2'], 1, 10), { ok: true, value: [['A', '1 2']] },
    'obs-fold joined with one SP')
  t.match(parseFieldLines(['x', 'A: 1', 'B: 2'], 1, 1), { ok: false, tooMany: true })
})
