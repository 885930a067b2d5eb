import t from 'tap'
import fc from 'fast-check'
import { ERROR_CODES } from '../../../../src/core/errors.js'
import {
  buildHttpError,
  buildTunnelGetReply,
  classifyTunnelLeg,
  parseHttpHead,
  type HttpHead
} from '../../../../src/tunnel/codec/http-head.js'

const head = (s: string): HttpHead => {
  const r = parseHttpHead(Buffer.from(s, 'latin1'))
  if (r.state !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(r)}`)
  return r.head
}

// Reference §1.9 GET and POST, plus variants from §6 checks 2, 3 and the client table.
const GET_19 = 'GET /live/cam1 HTTP/1.0\r\nUser-Agent: demo/1.0\r\nx-sessioncookie: 7f3c2a91d04b5e86\r\n' +
  'Accept: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n'
const POST_19 = 'POST /live/cam1 HTTP/1.0\r\nUser-Agent: demo/1.0\r\nx-sessioncookie: 7f3c2a91d04b5e86\r\n' +
  'Content-Type: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n' +
  'Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n'

t.test('parseHttpHead', async (tt) => {
  const body = 'T1BUSU9OUyBydHNw'
  const r = parseHttpHead(Buffer.from(POST_19 + body))
  tt.equal(r.state, 'ok')
  if (r.state === 'ok') {
    tt.equal(r.head.headLength, POST_19.length, 'base64 in the same segment starts at headLength (check 7)')
    tt.same(r.head.headers[1], ['x-sessioncookie', '7f3c2a91d04b5e86'])
    tt.equal(r.head.target, '/live/cam1')
  }
  const bare = head('GET / HTTP/1.1\nHost: x\nX-SessionCookie:  abc  \n\n')
  tt.equal(bare.headLength, 'GET / HTTP/1.1\nHost: x\nX-SessionCookie:  abc  \n\n'.length, 'bare LF')
  tt.same(bare.headers, [['Host', 'x'], ['X-SessionCookie', 'abc']])
  tt.equal(head('\r\n\r\nGET / HTTP/1.0\r\n\r\n').headLength, 22, 'leading blank lines tolerated and counted')
  tt.same(head('GET / HTTP/1.0\r\nX-A: one\r\n two\r\n\r\n').headers, [['X-A', 'one two']], 'obs-fold joined')
  tt.same(head('GET / HTTP/1.0\r\n\r\n').headers, [])
  for (const partial of ['', 'G', 'GET', 'GET / HTTP/1.0', 'GET / HTTP/1.0\r', 'GET / HTTP/1.0\r\n',
    'GET / HTTP/1.0\r\nA: b\r\n\r', '\r\n']) {
    tt.same(parseHttpHead(Buffer.from(partial)), { state: 'incomplete' }, `incomplete: ${JSON.stringify(partial)}`)
  }
  const errors: Array<[string, string]> = [
    ['GET /\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['GET / RTSP/1.0\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['GET  / HTTP/1.0\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['GET / HTTP/1.0\r\nno colon\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['GET / HTTP/1.0\r\nBad Name: x\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['GET / HTTP/1.0\r\nA: b\rc\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['GET / HTTP/1.0\r\nA: b\0c\r\n\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['$\x00\x00\x10', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['\x16\x03\x01\x02\x00\x01', 'TG_ERR_HTTP_HEAD_MALFORMED'],
    ['OPTIONS rtsp://x/ RTSP/1.0\r\n', 'TG_ERR_HTTP_HEAD_MALFORMED']
  ]
  for (const [input, code] of errors) {
    tt.match(parseHttpHead(Buffer.from(input, 'latin1')), { state: 'error', code }, `error: ${JSON.stringify(input)}`)
  }
  const big = 'GET / HTTP/1.0\r\n' + 'X-Pad: ' + 'a'.repeat(9000) + '\r\n\r\n'
  tt.match(parseHttpHead(Buffer.from(big)), { state: 'error', code: 'TG_ERR_HTTP_HEAD_TOO_LARGE' }, 'over 8192 bytes')
  tt.match(parseHttpHead(Buffer.from(big.slice(0, 8192))), { state: 'error', code: 'TG_ERR_HTTP_HEAD_TOO_LARGE' },
    'limit reached without blank line')
  tt.match(parseHttpHead(Buffer.from(big), { maxHeadBytes: 16384 }), { state: 'ok' }, 'limit overridable')
  const exactly = 'GET / HTTP/1.0\r\nX: ' + 'b'.repeat(8192 - 23) + '\r\n\r\n'
  tt.equal(exactly.length, 8192)
  tt.match(parseHttpHead(Buffer.from(exactly)), { state: 'ok' }, 'a head of exactly maxHeadBytes is accepted')
  const many = 'GET / HTTP/1.0\r\n' + Array.from({ length: 65 }, (_, i) => `H${i}: v\r\n`).join('') + '\r\n'
  tt.match(parseHttpHead(Buffer.from(many)), { state: 'error', code: 'TG_ERR_HTTP_HEAD_TOO_LARGE' }, '65 headers')
  tt.match(parseHttpHead(Buffer.from(many), { maxHeaders: 65 }), { state: 'ok' })
})

t.test('classifyTunnelLeg', async (tt) => {
  const cases: Array<[string, string, unknown]> = [
    ['§1.9 GET', GET_19, { leg: 'get', cookie: '7f3c2a91d04b5e86' }],
    ['§1.9 POST', POST_19, { leg: 'post', cookie: '7f3c2a91d04b5e86' }],
    ['FFmpeg GET (HTTP/1.1, Range, Icy-MetaData)',
      'GET /live HTTP/1.1\r\nRange: bytes=0-\r\nConnection: close\r\nIcy-MetaData: 1\r\nx-sessioncookie: ' +
      'c008e0d7f160f387\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n',
      { leg: 'get', cookie: 'c008e0d7f160f387' }],
    ['live555 GET with CSeq', 'GET /t HTTP/1.0\r\nCSeq: 1\r\nx-sessioncookie: f5e0ec185651abeedf3b8f2\r\n\r\n', {
      leg: 'get',
      cookie: 'f5e0ec185651abeedf3b8f2'
    }],
    ['gortsplib GET with Content-Length',
      'GET /t HTTP/1.1\r\nContent-Length: 30000\r\nX-Sessioncookie: 0123456789abcdef0123456789abcdef\r\n\r\n',
      { leg: 'get', cookie: '0123456789abcdef0123456789abcdef' }],
    ['header name case X-SessionCookie, value with +/=', 'POST /t HTTP/1.0\r\nX-SessionCookie:  ab+/cd==  \r\n\r\n', {
      leg: 'post',
      cookie: 'ab+/cd=='
    }],
    ['cookie case preserved', 'GET / HTTP/1.0\r\nx-sessioncookie: AbC\r\n\r\n', { leg: 'get', cookie: 'AbC' }],
    ['Axis query cookie',
      'GET /axis-media/media.amp?videocodec=h264&sessioncookie=3f2a-99%2B1 HTTP/1.0\r\nAccept: ' +
      'application/x-rtsp-tunnelled\r\n\r\n',
      { leg: 'get', cookie: '3f2a-99+1' }],
    ['Axis query cookie on POST', 'POST /x?sessioncookie=abc HTTP/1.0\r\nContent-Length: 84\r\n\r\n', {
      leg: 'post',
      cookie: 'abc'
    }],
    ['GET with Accept only', 'GET / HTTP/1.0\r\nAccept: text/html, application/x-rtsp-tunnelled;q=1\r\n\r\n', {
      leg: 'error',
      code: 'TG_ERR_TUN_NO_COOKIE',
      status: 400
    }],
    ['POST with Content-Type only', 'POST / HTTP/1.0\r\nContent-Type: Application/X-RTSP-Tunnelled\r\n\r\n', {
      leg: 'error',
      code: 'TG_ERR_TUN_NO_COOKIE',
      status: 400
    }],
    ['empty cookie', 'GET / HTTP/1.0\r\nx-sessioncookie:   \r\n\r\n', {
      leg: 'error',
      code: 'TG_ERR_TUN_BAD_COOKIE',
      status: 400
    }],
    ['cookie too long', `GET / HTTP/1.0\r\nx-sessioncookie: ${'a'.repeat(129)}\r\n\r\n`, {
      leg: 'error',
      code: 'TG_ERR_TUN_BAD_COOKIE',
      status: 400
    }],
    ['conflicting cookies', 'GET / HTTP/1.0\r\nx-sessioncookie: a\r\nX-SessionCookie: b\r\n\r\n', {
      leg: 'error',
      code: 'TG_ERR_TUN_BAD_COOKIE',
      status: 400
    }],
    ['bad percent-encoding in query cookie', 'GET /?sessioncookie=%zz HTTP/1.0\r\n\r\n', {
      leg: 'error',
      code: 'TG_ERR_TUN_BAD_COOKIE',
      status: 400
    }],
    ['plain web GET', 'GET /index.html HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n', { leg: 'none' }],
    ['plain web POST', 'POST /form HTTP/1.1\r\nContent-Type: application/json\r\n\r\n', { leg: 'none' }],
    ['HEAD with cookie', 'HEAD / HTTP/1.0\r\nx-sessioncookie: abc\r\n\r\n', { leg: 'none' }]
  ]
  for (const [name, text, expected] of cases) tt.match(classifyTunnelLeg(head(text)), expected as object, name)
  tt.same(classifyTunnelLeg(head('GET / HTTP/1.0\r\nx-sessioncookie: abc\r\n\r\n'), { minCookie: 16 }).leg, 'error',
    'minCookie option')
  tt.same(classifyTunnelLeg(head(`GET / HTTP/1.0\r\nx-sessioncookie: ${'a'.repeat(200)}\r\n\r\n`),
    { maxCookie: 256 }).leg,
  'get', 'maxCookie option')
  tt.same(classifyTunnelLeg(head(`GET / HTTP/1.0\r\nx-sessioncookie: ${'a'.repeat(128)}\r\n\r\n`)).leg, 'get',
    '128 accepted by default')
})

t.test('buildTunnelGetReply / buildHttpError', async (tt) => {
  tt.equal(buildTunnelGetReply().toString('latin1'),
    'HTTP/1.0 200 OK\r\nServer: tunnelgate\r\nConnection: close\r\nDate: Thu, 19 Aug 1982 18:30:00 GMT\r\n' +
    'Cache-Control: no-store\r\nPragma: no-cache\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n')
  tt.match(buildTunnelGetReply({ serverName: 'gw/2' }).toString(),
    /^HTTP\/1\.0 200 OK\r\nServer: gw\/2\r\nConnection: close\r\n/)
  tt.notMatch(buildTunnelGetReply({ serverName: '' }).toString(), /Server:/)
  tt.equal(buildTunnelGetReply({ serverName: 'a\r\nX-Evil: 1' }).toString().split('\r\n').length, 9,
    'no header injection via serverName')
  const reply = buildTunnelGetReply().toString().toLowerCase()
  for (const h of ['content-length', 'transfer-encoding', 'x-server-ip-address']) tt.notOk(reply.includes(h), `no ${h}`)
  const err = buildHttpError(400, 'Bad Request', [['X-Reason', 'no\r\ncookie']]).toString('latin1')
  const [h, body] = err.split('\r\n\r\n') as [string, string]
  tt.match(h, /^HTTP\/1\.0 400 Bad Request\r\n/)
  tt.match(h, /\r\nConnection: close\r\n/)
  tt.match(h, /\r\nX-Reason: no {2}cookie$/)
  tt.equal(Number(/Content-Length: (\d+)/.exec(h)![1]), Buffer.byteLength(body))
  tt.equal(body, '400 Bad Request\n')
  tt.throws(() => buildHttpError(400, 'x', [['Bad Name', 'v']]))
  tt.throws(() => buildHttpError(42, 'x'))
})

t.test('property: random bytes and random splits of real heads never throw', async (tt) => {
  const codes = new Set(Object.keys(ERROR_CODES))
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (arr) => {
    const r = parseHttpHead(Buffer.from(arr), { maxHeadBytes: 512 })
    if (r.state === 'error') return codes.has(r.code) && r.reason.length > 0
    if (r.state === 'ok') return classifyTunnelLeg(r.head).leg !== undefined
    return true
  }), { seed: 1982, numRuns: 1000 })
  const printable = fc.string({ unit: 'binary-ascii', maxLength: 40 })
  fc.assert(fc.property(fc.array(fc.tuple(printable, printable), { maxLength: 8 }), printable, (headers, target) => {
    const text = `GET /${target} HTTP/1.0\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
    const r = parseHttpHead(Buffer.from(text, 'latin1'))
    if (r.state === 'incomplete') return text.length === 0
    if (r.state === 'error') return codes.has(r.code)
    const c = classifyTunnelLeg(r.head)
    return c.leg !== 'error' || codes.has(c.code)
  }), { seed: 7, numRuns: 500 })
  tt.pass('properties held')
})
