/** checkOpsRequest (src/ops/ops-guard.ts): the ops token, loopback Host names and foreign Origins. */
import t from 'tap'
import { checkOpsRequest } from '../../../src/ops/ops-guard.js'

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

t.test('with a token: Bearer or the Basic password, nothing else', async t => {
  const token = 'a-long-ops-token-123'
  t.same(checkOpsRequest(token, { authorization: `Bearer ${token}` }), { ok: true })
  t.same(checkOpsRequest(token, { authorization: basic('anyone', token) }), { ok: true })
  t.match(checkOpsRequest(token, {}), { ok: false, status: 401 })
  t.match(checkOpsRequest(token, { authorization: `Bearer ${token}x` }), { ok: false, status: 401 })
  t.match(checkOpsRequest(token, { authorization: basic(token, 'nope') }), { ok: false, status: 401 },
    'the token as the user name is not the password')
  t.match(checkOpsRequest(token, { authorization: 'Digest x' }), { ok: false, status: 401 })
  t.same(
    checkOpsRequest(token, { authorization: `Bearer ${token}`, host: 'evil.example', origin: 'https://evil.example' }),
    { ok: true }, 'a token allows any name and page')
})

t.test('without a token: loopback names only, no foreign page', async t => {
  for (const host of ['127.0.0.1:9180', 'localhost:9180', '[::1]:9180',
    '127.0.0.1']) t.same(checkOpsRequest('', { host }), { ok: true }, host)
  t.match(checkOpsRequest('', { host: 'rebound.example:9180' }), { ok: false, status: 403 }, 'DNS rebinding')
  t.match(checkOpsRequest('', { host: '127.0.0.1:9180', origin: 'https://evil.example' }), { ok: false, status: 403 },
    'another site\'s page')
  t.same(checkOpsRequest('', { host: '127.0.0.1:9180', origin: 'http://127.0.0.1:9180' }), { ok: true },
    'the status page itself')
  t.match(checkOpsRequest('', { host: '127.0.0.1', origin: 'not a url' }), { ok: false, status: 403 })
})
