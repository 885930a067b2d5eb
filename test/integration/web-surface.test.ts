/**
 * The web surface on the tunnel port: /healthz and /readyz over plain HTTP/1.0 and 1.1 (pipelined),
 * /metrics there answered 404 (it is on the ops listener), and the clear error when a port is taken.
 */
import t from 'tap'
import { TunnelgateError } from '../../src/core/errors.js'
import { startGateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { metric, settled, startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, connect, destroyAllClients, writeAsync } from '../helpers/tunnel-client.js'

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend])
t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]) })

interface HttpReply { status: number, headers: Record<string, string>, body: string }

/** Parse consecutive HTTP responses (Content-Length or chunked bodies). Returns null while incomplete. */
function parseReplies (buf: Buffer, want: number): HttpReply[] | null {
  const out: HttpReply[] = []
  let off = 0
  while (out.length < want) {
    const end = buf.indexOf('\r\n\r\n', off)
    if (end === -1) return null
    const lines = buf.toString('latin1', off, end).split('\r\n')
    const status = Number(lines[0]!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
    }
    let p = end + 4
    let body = ''
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const le = buf.indexOf('\r\n', p)
        if (le === -1) return null
        const n = parseInt(buf.toString('latin1', p, le), 16)
        if (buf.length < le + 2 + n + 2) return null
        body += buf.toString('utf8', le + 2, le + 2 + n)
        p = le + 2 + n + 2
        if (n === 0) break
      }
    } else {
      const n = Number(headers['content-length'] ?? 0)
      if (buf.length < p + n) return null
      body = buf.toString('utf8', p, p + n)
      p += n
    }
    out.push({ status, headers, body })
    off = p
  }
  return out
}

async function exchange (
  raw: string,
  want: number,
  port = gw.port
): Promise<{ replies: HttpReply[], closed: Promise<void> }> {
  const s = await connect(port)
  let buf = Buffer.alloc(0)
  const closed = new Promise<void>(resolve => s.once('close', () => resolve()))
  const done = new Promise<HttpReply[]>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${want} replies: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)),
      3000
    )
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      const r = parseReplies(buf, want)
      if (r !== null) {
        clearTimeout(timer)
        resolve(r)
      }
    })
  })
  await writeAsync(s, raw)
  const replies = await done
  return { replies, closed }
}

t.test(
  'HTTP/1.0: /healthz, /readyz on the tunnel port, /metrics on the ops listener, connection closed after each',
  async tt => {
    const tc = await TunnelClient.open(gw.port)
    tt.equal((await tc.request('OPTIONS')).status, 200, 'a tunnel is open alongside')
    for (const [path, port, status] of [
      ['/healthz', gw.port, 200],
      ['/readyz', gw.port, 200],
      ['/metrics', gw.port, 404],
      ['/healthz', gw.opsPort, 200],
      ['/metrics', gw.opsPort, 200]
    ] as const) {
      const where = port === gw.port ? 'tunnel port' : 'ops listener'
      const { replies, closed } = await exchange(`GET ${path} HTTP/1.0\r\n\r\n`, 1, port)
      tt.equal(replies[0]!.status, status, `${path} ${status} over HTTP/1.0 on the ${where}`)
      await closed
      if (path === '/healthz') tt.same(JSON.parse(replies[0]!.body), { status: 'ok' }, 'healthz body')
      if (path === '/readyz') tt.same(JSON.parse(replies[0]!.body), { status: 'ready' }, 'readyz body')
      if (path === '/metrics' && status === 404) {
        tt.notMatch(replies[0]!.body, /tunnelgate_/, 'no metric on the tunnel port')
      }
      if (path === '/metrics' && status === 200) {
        tt.match(replies[0]!.headers['content-type'] ?? '', /^text\/plain/, 'metrics content type')
        tt.match(replies[0]!.body, /^tunnelgate_tunnels_active 1$/m, 'metrics show the open tunnel')
      }
    }
    tc.close()
    await settled(gw, [backend])
    const { replies } = await exchange('GET /metrics HTTP/1.0\r\n\r\n', 1, gw.opsPort)
    tt.match(replies[0]!.body, /^tunnelgate_tunnels_active 0$/m, 'back to 0 over HTTP after the tunnel closed')
    tt.equal(await metric(gw, 'tunnelgate_tunnels_active'), 0, 'and in the registry')
  }
)

t.test('HTTP/1.1 pipelined requests on one connection are answered in order', async tt => {
  const req = (p: string, last = false): string =>
    `GET ${p} HTTP/1.1\r\nHost: gw.example.net\r\n${last ? 'Connection: close\r\n' : ''}\r\n`
  const { replies, closed } = await exchange(
    req('/healthz') + req('/readyz') + req('/metrics') + req('/healthz', true),
    4
  )
  tt.same(replies.map(r => r.status), [200, 200, 404, 200], 'four replies')
  tt.same(JSON.parse(replies[0]!.body), { status: 'ok' }, '1st is /healthz')
  tt.same(JSON.parse(replies[1]!.body), { status: 'ready' }, '2nd is /readyz')
  tt.notMatch(replies[2]!.body, /tunnelgate_tunnels_active/, '3rd is /metrics: not found here')
  tt.same(JSON.parse(replies[3]!.body), { status: 'ok' }, '4th is /healthz')
  await closed
  tt.pass('connection closed after Connection: close')
})

t.test('a taken port gives TG_ERR_LISTEN mentioning "already in use"', async tt => {
  const cfg = buildConfig([
    { port: gw.port, host: '127.0.0.1', logLevel: 'silent', workers: 0, ops: { port: 0 }, backends: [backend.url] }
  ])
  const err = await startGateway(cfg).then(g => { void g.close(); return null }, (e: unknown) => e)
  tt.ok(TunnelgateError.is(err), 'rejects with a TunnelgateError')
  tt.equal((err as TunnelgateError).code, 'TG_ERR_LISTEN', 'code TG_ERR_LISTEN')
  tt.match((err as TunnelgateError).message, /already in use/, `message: ${(err as Error).message}`)
  const { replies } = await exchange('GET /healthz HTTP/1.0\r\n\r\n', 1)
  tt.equal(replies[0]!.status, 200, 'the first gateway keeps serving')
  // The ops port taken: the same coded error naming --ops-port, and the tunnel port is let go again.
  const opsTaken = buildConfig([
    { port: 0, host: '127.0.0.1', logLevel: 'silent', workers: 0, ops: { port: gw.opsPort }, backends: [backend.url] }
  ])
  const e2 = await startGateway(opsTaken).then(g => { void g.close(); return null }, (e: unknown) => e)
  tt.equal((e2 as TunnelgateError).code, 'TG_ERR_LISTEN', 'ops port taken: TG_ERR_LISTEN')
  tt.match((e2 as TunnelgateError).message, /already in use.*--ops-port/, `message: ${(e2 as Error).message}`)
})
