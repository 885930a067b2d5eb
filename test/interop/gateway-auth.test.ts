// Gateway HTTP Basic authentication of the tunnel GET (reference check 28), with real clients:
// ffmpeg and GStreamer retry the GET with credentials after the 401; the POST is never challenged.
import t from 'tap'
import net from 'node:net'
import pino from 'pino'
import { buildConfig } from '../../src/config/config.js'
import { startGateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { hashPassword } from '../../src/door/auth.js'
import { gstSummary, runGst, runPeer } from '../helpers/peers.js'

const silent = pino({ level: 'silent' })

t.test('Basic auth on the tunnel GET', async t => {
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
  t.teardown(() => origin.close())
  const config = buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    ops: { port: 0 },
    backends: [`rtsp://127.0.0.1:${origin.port}`],
    auth: { basic: [{ user: 'viewer', hash: hashPassword('s3cret', 1024) }] }
  }])
  const gw = await startGateway(config, { logger: silent })
  t.teardown(() => gw.close())

  const raw = async (text: string): Promise<string> => await new Promise((resolve, reject) => {
    const s = net.connect(gw.port, '127.0.0.1', () => s.write(text))
    let out = ''
    s.on('data', d => { out += d.toString('latin1') })
    s.on('close', () => resolve(out))
    s.on('error', reject)
    setTimeout(() => { s.destroy(); resolve(out) }, 1500)
  })
  const noAuth = await raw('GET /demo HTTP/1.0\r\nx-sessioncookie: abcdefgh1234\r\nAccept: ' +
    'application/x-rtsp-tunnelled\r\n\r\n')
  t.match(noAuth, /^HTTP\/1\.0 401 Unauthorized\r\n/, 'GET without credentials: 401')
  t.match(noAuth, /WWW-Authenticate: Basic realm="tunnelgate"/)
  const wrong =
    await raw(`GET /demo HTTP/1.0\r\nx-sessioncookie: abcdefgh1234\r\nAuthorization: Basic ${Buffer.from('viewer:nope').toString('base64')}\r\n\r\n`)
  t.match(wrong, /^HTTP\/1\.0 401/, 'wrong password: 401')
  const good =
    await raw(`GET /demo HTTP/1.0\r\nx-sessioncookie: abcdefgh1234\r\nAuthorization: Basic ${Buffer.from('viewer:s3cret').toString('base64')}\r\n\r\n`)
  t.match(good, /^HTTP\/1\.0 200 OK\r\n/, 'right password: the tunnel opens')
  const rtsp = await raw('OPTIONS rtsp://127.0.0.1/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n')
  t.match(rtsp, /^RTSP\/1\.0 403/, 'plain RTSP cannot bypass gateway auth')

  const ff = await runPeer('ffmpeg',
    ['-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://viewer:s3cret@127.0.0.1:${gw.port}/demo`, '-t', '2', '-f',
      'null', '-'],
    { timeoutMs: 30_000 })
  t.equal(ff.code, 0, `ffmpeg with credentials plays (stderr: ${ff.stderr.slice(0, 300)})`)
  const ffNo = await runPeer('ffmpeg',
    ['-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${gw.port}/demo`, '-t', '1', '-f', 'null', '-'],
    { timeoutMs: 30_000 })
  t.not(ffNo.code, 0, 'ffmpeg without credentials is refused')
  // runGst: sync=true, and GStreamer's own stop-time race (its PAUSE write cancelled after every
  // buffer has played) told apart from a failure (test/helpers/peers.ts).
  const gst = await runGst(['rtspsrc', `location=rtsph://127.0.0.1:${gw.port}/demo`, 'user-id=viewer', 'user-pw=s3cret',
    '!', 'decodebin'],
  50, { timeoutMs: 30_000 })
  t.ok(gst.played, `GStreamer rtsph:// with credentials plays (${gstSummary(gst)})`)
})
