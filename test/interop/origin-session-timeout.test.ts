// The origin's RTSP session timeout (Session: <id>;timeout=N): a session that sends nothing for
// longer than N seconds is torn down and its connection closed; one kept alive with
// GET_PARAMETER survives past the same time.
import t from 'tap'
import pino from 'pino'
import { startOrigin } from '../../src/origin/index.js'
import { RawRtspClient } from '../helpers/peers.js'

const silent = pino({ level: 'silent' })

t.test('sessions time out without keepalives and survive with them', async t => {
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent, sessionTimeoutSec: 1 })
  t.teardown(() => origin.close())
  const url = `rtsp://127.0.0.1:${origin.port}/demo`

  const setup = async (): Promise<{ c: RawRtspClient, session: string }> => {
    const c = await RawRtspClient.connect(origin.port)
    const d = await c.request('DESCRIBE', url, { Accept: 'application/sdp' })
    t.equal(d.status, 200)
    const s = await c.request('SETUP', `${url}/trackID=1`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' })
    t.equal(s.status, 200)
    t.match(s.header('Session') ?? '', /;timeout=1$/, 'the Session header announces the timeout')
    return { c, session: (s.header('Session') ?? '').split(';')[0]! }
  }

  const idle = await setup()
  const kept = await setup()
  const started = Date.now()
  let closedAt = 0
  const closed = idle.c.waitClose().then(() => { closedAt = Date.now() })
  // Keep one session alive every 300 ms for 3 s (three timeouts); leave the other silent.
  while (Date.now() - started < 3000) {
    const r = await kept.c.request('GET_PARAMETER', url, { Session: kept.session })
    t.equal(r.status, 200, 'keepalive answered')
    await new Promise(resolve => setTimeout(resolve, 300))
  }
  await closed
  const waited = closedAt - started
  t.ok(waited >= 1000 && waited < 3000, `the silent session's connection closed after its timeout (${waited} ms)`)
  const after = await kept.c.request('GET_PARAMETER', url, { Session: kept.session })
  t.equal(after.status, 200, 'the kept-alive session is still there after 3 s')
  kept.c.close()
})
