/**
 * Issue 5: a fatally malformed client request closes the tunnel only after the replies to the
 * requests pipelined before it (and its own 400) were flushed to the client, in order, bounded
 * by a short deadline; nothing read after it reaches the backend.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startTestGateway, errorCount } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import { TunnelClient, destroyAllClients } from '../helpers/tunnel-client.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'

t.teardown(() => { destroyAllClients() })

t.test('pipelined requests before a fatal one get their replies, then the 400, then the close', async t => {
  // The backend answers each request 300 ms late, so the replies are still due when the bad one arrives.
  const dss = dssScript()
  const backend = await ScriptedBackend.start((u, conn) => {
    setTimeout(() => {
      if (!conn.socket.destroyed) dss(u, conn)
    }, 300)
  })
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend])
  const before = await leakSnapshot(gw)
  const c = await TunnelClient.open(gw.port, { cookie: randomBytes(16).toString('base64url') })
  const first = c.build('OPTIONS')
  const second = c.build('DESCRIBE', c.url, [['Accept', 'application/sdp']])
  const bad = Buffer.from(`OPTIONS ${c.url} RTSP/1.0\r\nCSeq: 99\r\nContent-Length: nope\r\n\r\n`, 'latin1')
  const after = c.build('OPTIONS')
  await c.post.send(Buffer.concat([first.bytes, second.bytes, bad, after.bytes]))
  t.equal((await c.get.response(first.cseq)).status, 200, 'the reply to the 1st request reached the client')
  t.equal((await c.get.response(second.cseq)).status, 200, 'the reply to the 2nd request reached the client')
  await waitFor(() => c.get.closed, 'the tunnel closed', 3000)
  // On the wire: both replies in order, then the 400 (no CSeq: the bad head's was not read), then nothing.
  const body = c.get.body.toString('latin1')
  const statuses = [...body.matchAll(/^RTSP\/1\.0 (\d{3}) /gm)].map(m => Number(m[1]))
  t.same(statuses, [200, 200, 400], 'both replies in order, then the 400, nothing else')
  t.ok(body.endsWith('RTSP/1.0 400 Bad Request\r\n\r\n'), 'the 400 is the last thing sent')
  t.equal(await errorCount(gw, 'TG_ERR_RTSP_MALFORMED'), 1, 'the malformed request is counted')
  const conn = await backend.waitConn()
  t.equal(conn.units.filter(u => u.kind === 'request').length, 2, 'only the two good requests reached the backend')
  c.close()
  await assertNoLeaks(gw, before, [backend])
})
