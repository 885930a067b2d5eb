// Regression: a leg handed to a local worker must not lose the bytes that arrive while the
// hand-off is under way. Clients write the POST head and the first base64 message in separate
// segments (ffmpeg does); bytes landing in the portal between its decision and the close of its
// copy of the socket were read and dropped once (freezeSocket restarted reading by draining the
// buffer after readStop), so a few percent of tunnels never got a DESCRIBE reply.
import t from 'tap'
import pino from 'pino'
import { buildConfig } from '../../src/config/config.js'
import { startGateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { GetLeg, PostLeg, newCookie, rtspRequest } from '../helpers/tunnel-client.js'
import { pause } from '../helpers/wait.js'
import { randomBytes } from 'node:crypto'

const silent = pino({ level: 'silent' })

t.test('POST bodies written right after the head survive the hand-off to a worker', async t => {
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
  t.teardown(() => origin.close())
  const config = buildConfig([
    {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      workers: 2,
      ops: { port: 0 },
      backends: [`rtsp://127.0.0.1:${origin.port}`],
      limits: { maxTunnelsPerIp: 0, maxUnpairedLegsPerIp: 0 }
    }
  ])
  const gw = await startGateway(config, { logger: silent })
  t.teardown(() => gw.close())
  const url = `rtsp://127.0.0.1:${gw.port}/demo`
  let ok = 0
  const failures: string[] = []
  for (let round = 0; round < 6; round++) {
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const cookie = randomBytes(8).toString('hex') + newCookie(8)
      const get = await GetLeg.open(gw.port, { cookie, path: '/demo' })
      try {
        await get.readHead(10_000)
        const post = await PostLeg.open(gw.port, { cookie, path: '/demo' })
        // The body follows the head in its own segments, 0–3 ms later.
        await pause(i % 4)
        const describe = rtspRequest('DESCRIBE', url, 1, [['Accept', 'application/sdp']])
        const b64 = describe.toString('base64')
        await post.sendRaw(b64.slice(0, 20))
        await post.sendRaw(b64.slice(20))
        const res = await get.response(1, 10_000)
        if (res.status === 200) ok++
        else failures.push(`status ${res.status}`)
        post.destroy()
      } catch (err) {
        failures.push((err as Error).message)
      } finally {
        get.destroy()
      }
    }))
  }
  t.same(failures, [], 'every tunnel got its DESCRIBE reply')
  t.equal(ok, 240)
})
