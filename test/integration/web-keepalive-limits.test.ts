/**
 * The front door reads the first request head of a web connection under limits.httpHeadBytes,
 * limits.httpHeaders and limits.headerTimeoutMs; the later requests of a kept-alive connection
 * are parsed by Node's HTTP parser (Fastify), under the same limits: too large → 431, too many
 * header lines → 431, too slow → 408, each counted and the connection closed.
 */
import t from 'tap'
import type net from 'node:net'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { metric, startTestGateway } from '../helpers/gateway-harness.js'
import { connect, destroyAllClients, writeAsync } from '../helpers/tunnel-client.js'

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend], {
  limits: { httpHeadBytes: 1024, httpHeaders: 10, headerTimeoutMs: 600 }
})
t.afterEach(() => { destroyAllClients() })

const ok = 'GET /healthz HTTP/1.1\r\nHost: gw.test\r\n\r\n'

/** Write `first` then `second` on one connection; everything read until the peer closes. */
async function twoRequests (second: string, waitMs = 0): Promise<{ text: string, closed: boolean }> {
  const s: net.Socket = await connect(gw.port)
  let text = ''
  s.on('data', (d: Buffer) => { text += d.toString('latin1') })
  const closed = new Promise<boolean>(resolve => {
    s.once('close', () => resolve(true))
    setTimeout(() => resolve(false), 5000)
  })
  await writeAsync(s, ok)
  for (let i = 0; i < 50 && !text.includes('"ok"'); i++) await new Promise(resolve => setTimeout(resolve, 20))
  await writeAsync(s, second)
  if (waitMs > 0) await new Promise(resolve => setTimeout(resolve, waitMs))
  const wasClosed = await closed
  return { text, closed: wasClosed }
}

t.test('a later request head over limits.httpHeadBytes: 431, counted, closed', async t => {
  const before = await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.httpHeadBytes' })
  const errs = await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_HEAD_TOO_LARGE' })
  const r = await twoRequests(`GET /healthz HTTP/1.1\r\nHost: gw.test\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`)
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/, 'the first request is answered')
  t.match(r.text, /HTTP\/1\.0 431 Request Header Fields Too Large\r\n/, 'the second gets 431')
  t.ok(r.closed, 'and the connection is closed')
  t.equal(
    await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.httpHeadBytes' }),
    before + 1,
    'limit hit counted'
  )
  t.equal(
    await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_HEAD_TOO_LARGE' }),
    errs + 1,
    'error counted'
  )
})

t.test('a later request with more header lines than limits.httpHeaders: 431, counted, closed', async t => {
  const before = await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.httpHeaders' })
  const lines = Array.from({ length: 12 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')
  const r = await twoRequests(`GET /healthz HTTP/1.1\r\nHost: gw.test\r\n${lines}\r\n`)
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/, 'the first request is answered')
  t.match(r.text, /HTTP\/1\.1 431 Request Header Fields Too Large\r\n/, 'the second gets 431')
  t.match(r.text, /TG_ERR_HTTP_HEAD_TOO_LARGE/, 'with the error code in the body')
  t.ok(r.closed, 'and the connection is closed')
  t.equal(
    await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.httpHeaders' }),
    before + 1,
    'limit hit counted'
  )
  // Exactly at the limit is fine.
  const atLimit = Array.from({ length: 8 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')
  const fine = await twoRequests(`GET /healthz HTTP/1.1\r\nHost: gw.test\r\n${atLimit}Connection: close\r\n\r\n`)
  t.equal(fine.text.match(/HTTP\/1\.1 200 OK/g)?.length, 2, `${10} header lines pass`)
})

t.test('a later request head not finished within limits.headerTimeoutMs: 408, counted, closed', async t => {
  const before = await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.headerTimeoutMs' })
  const r = await twoRequests('GET /healthz HTTP/1.1\r\nHost: gw.test\r\nX-Slow: 1\r\n', 2500)
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\n/, 'the first request is answered')
  t.match(r.text, /HTTP\/1\.0 408 Request Timeout\r\n/, 'the unfinished second head gets 408')
  t.ok(r.closed, 'and the connection is closed')
  t.equal(
    await metric(gw, 'tunnelgate_limit_hits_total', { limit: 'limits.headerTimeoutMs' }),
    before + 1,
    'limit hit counted'
  )
})

t.test('the first head (read by the front door) counts the same limit hits', async t => {
  const hits = async (limit: string): Promise<number> => await metric(gw, 'tunnelgate_limit_hits_total', { limit })
  const send = async (raw: string): Promise<string> => {
    const s: net.Socket = await connect(gw.port)
    let text = ''
    s.on('data', (d: Buffer) => { text += d.toString('latin1') })
    const closed = new Promise<void>(resolve => s.once('close', () => resolve()))
    await writeAsync(s, raw)
    await closed
    return text
  }
  const bytes = await hits('limits.httpHeadBytes')
  t.match(
    await send(`GET /healthz HTTP/1.1\r\nHost: gw.test\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`),
    /^HTTP\/1\.0 431 /,
    'too large: 431'
  )
  t.equal(await hits('limits.httpHeadBytes'), bytes + 1, 'limits.httpHeadBytes hit counted')
  const lines = await hits('limits.httpHeaders')
  t.match(
    await send(
      `GET /healthz HTTP/1.1\r\nHost: gw.test\r\n${
        Array.from({ length: 12 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}\r\n`
    ),
    /^HTTP\/1\.0 431 /,
    'too many lines: 431'
  )
  t.equal(await hits('limits.httpHeaders'), lines + 1, 'limits.httpHeaders hit counted')
  const slow = await hits('limits.headerTimeoutMs')
  t.equal(await send('GET /healthz HTTP/1.1\r\nHost: gw'), '', 'an unfinished first head: closed without a reply')
  t.equal(await hits('limits.headerTimeoutMs'), slow + 1, 'limits.headerTimeoutMs hit counted')
})
