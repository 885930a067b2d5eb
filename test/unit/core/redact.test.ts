/**
 * redact.ts: URLs and targets lose their query, fragment and password; free text loses every
 * written-out credential; log fields are redacted down two levels of plain objects.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { REDACTED, redactHeader, redactLogFields, redactText, redactUrl } from '../../../src/core/redact.js'
import { createLogger } from '../../../src/core/logger.js'

t.test('redactUrl: path kept, query, fragment and password gone', async t => {
  t.equal(redactUrl('/live/cam1?token=tg1.1.x.y'), '/live/cam1')
  t.equal(redactUrl('/axis-media/media.amp?sessioncookie=123456789&x=1'), '/axis-media/media.amp')
  t.equal(redactUrl('rtsp://alice:s3cret@10.0.0.5:554/cam?token=abc#frag'), `rtsp://alice:${REDACTED}@10.0.0.5:554/cam`)
  t.equal(redactUrl('rtsp://alice@10.0.0.5/cam'), 'rtsp://alice@10.0.0.5/cam', 'a user without a password stays')
  t.equal(redactUrl('http://u:p@h:8080'), `http://u:${REDACTED}@h:8080`)
  t.equal(redactUrl('/plain/path'), '/plain/path')
  t.equal(redactUrl('*'), '*')
})

t.test('redactHeader: secret headers keep at most their scheme', async t => {
  t.equal(redactHeader('Authorization', 'Basic YWxpY2U6c2VjcmV0'), `Basic ${REDACTED}`)
  t.equal(redactHeader('authorization', 'Bearer tg1.2.3.4'), `Bearer ${REDACTED}`)
  t.equal(redactHeader('x-sessioncookie', 'Qh7Jk2Lm9Np4Rs6T'), REDACTED)
  t.equal(redactHeader('User-Agent', 'LibVLC/3.0'), 'LibVLC/3.0')
})

t.test('redactText: URLs inside text, Basic/Bearer and key=value secrets', async t => {
  t.equal(redactText("'rtsp://gw/cam2?token=abc.def' is outside the token's path '/cam1'"),
    "'rtsp://gw/cam2' is outside the token's path '/cam1'")
  t.equal(redactText('no route for /x?sessioncookie=ZZZZZZZZ'), 'no route for /x')
  t.equal(redactText('header Authorization: Bearer abc.def.ghi'), `header Authorization: Bearer ${REDACTED}`)
  t.equal(redactText('x-sessioncookie: Qh7Jk2Lm9Np4'), `x-sessioncookie: ${REDACTED}`)
  t.equal(redactText('token=abc sessioncookie=def'), `token=${REDACTED} sessioncookie=${REDACTED}`)
  t.equal(redactText('1/2 of text/html'), '1/2 of text/html', 'slashes that are not paths stay')
})

t.test('redactLogFields: strings, nested plain objects, errors; class instances untouched', async t => {
  const sock = new (class Sock { url = '/x?token=1' })()
  const out = redactLogFields({
    path: '/c?token=1',
    n: 3,
    headers: { authorization: 'Basic abc', host: 'h' },
    err: new Error('GET /a?token=zz failed'),
    sock,
    list: ['/l?token=q']
  })
  t.equal(out.path, '/c')
  t.equal(out.n, 3)
  t.same(out.headers, { authorization: `Basic ${REDACTED}`, host: 'h' })
  t.equal((out.err as { message: string }).message, 'GET /a failed')
  t.equal(out.sock, sock, 'a class instance is left to its serializer')
  t.same(out.list, ['/l'])
  const clean = { a: 1, b: '/p' }
  t.equal(redactLogFields(clean), clean, 'nothing to redact: the same object')
})

t.test('createLogger: every line through the formatter', async t => {
  let text = ''
  const sink = new Writable({ write (c: Buffer, _e, cb) { text += c.toString(); cb() } })
  const log = createLogger('info', sink)
  log.child({ component: 'x' }).info({
    event: 'tunnel-opened',
    path: '/cam?token=SECRET1',
    url: 'rtsp://u:SECRET2@h/x'
  },
  'opened')
  log.info({ req: { method: 'GET', url: '/watch/cam?token=SECRET3' } }, 'req')
  await new Promise(resolve => setImmediate(resolve))
  t.notMatch(text, /SECRET/, text)
  t.match(text, /"path":"\/cam"/)
  t.match(text, /"url":"\/watch\/cam"/)
})

t.test('a config error never repeats a password or token from the URL it refuses', async t => {
  const { buildConfig } = await import('../../../src/config/config.js')
  for (const layer of [{ backends: ['http://feed:PASSW0RD-1@10.0.0.5:554'] },
    { backends: [{ url: 'rtsp://feed:PASSW0RD-2@10.0.0.5:554/path?token=TOKEN-3' }] },
    { httpRoutes: [{ path: '/hls', backends: ['http://u:PASSW0RD-4@h:1/x?token=TOKEN-5'] }] }]) {
    let message = ''
    try { buildConfig([layer]) } catch (err) { message = (err as Error).message }
    t.match(message, /^config: '/, message)
    t.notMatch(message, /PASSW0RD|TOKEN-/, 'no secret in the message')
  }
})
