/**
 * Requests that used to end the process, sent as an attacker would (raw sockets) to the real
 * gateway in each layout (one process, a portal with two relay workers, a portal in front of a
 * relay node): request lines with stray CRs and control bytes, and first RTSP requests whose URL
 * authority is not legal (in a tunnel and as plain RTSP). Each gets its coded 400; every process
 * stays up, /healthz answers within 1 s, a real ffmpeg viewer keeps playing throughout, and a new
 * one plays afterwards.
 */
import t from 'tap'
import net from 'node:net'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { healthz, LAYOUTS, startChildGateway } from '../helpers/child-gateway.js'
import { startReferenceViewer } from '../helpers/reference-viewer.js'
import { runPeer } from '../helpers/peers.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const STALL_MS = 4000

/** Write `data` on a new connection; what came back when it closed or after `waitMs`. */
function exchange (port: number, data: Buffer | string, waitMs = 3000, until?: RegExp): Promise<string> {
  return new Promise(resolve => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    let done = false
    const finish = (): void => { if (done) return; done = true; s.destroy(); resolve(text) }
    s.on('data', d => { text += d.toString('latin1'); if (until?.test(text) === true) finish() })
    s.on('error', finish)
    s.on('close', finish)
    s.on('connect', () => s.write(data))
    setTimeout(finish, waitMs)
  })
}

/** A tunnel whose first RTSP request is `first`: what its GET received. */
async function tunnelFirstRequest (port: number, first: string): Promise<string> {
  const cookie = randomBytes(12).toString('base64url')
  const get = net.connect(port, '127.0.0.1')
  let text = ''
  get.on('data', d => { text += d.toString('latin1') })
  get.on('error', () => {})
  await new Promise(resolve => get.once('connect', resolve))
  get.write(`GET /demo HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`)
  const post = net.connect(port, '127.0.0.1')
  post.on('error', () => {})
  await new Promise(resolve => post.once('connect', resolve))
  post.write(`POST /demo HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n`)
  post.write(Buffer.from(first, 'latin1').toString('base64'))
  const deadline = Date.now() + 5000
  while (!/RTSP\/1\.0 \d{3} /.test(text) && Date.now() < deadline &&
    !get.destroyed) await new Promise(resolve => setTimeout(resolve, 20))
  post.destroy()
  get.destroy()
  return text
}

const BAD_HEADS = [
  'GET / HTTP/1.1\r\r\n\r\n',
  'GET /demo HTTP/1.1\r\r\nx-sessioncookie: abcdefghijkl\r\n\r\n',
  'POST /demo HTTP/1.0\r\r\nx-sessioncookie: abcdefghijkl\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n',
  'GET / HTTP/1.1\r\r\r\n\r\n',
  'GET /\r HTTP/1.1\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n',
  'GET / HTTP/1.1\r\n Host: a\r\n\r\n'
]
const BAD_URLS = ['rtsp://h:2r080/demo', 'rtsp://h:80:90/demo', 'rtsp://[::1/demo', 'rtsp://[zz::1]/demo',
  'rtsp://h:99999/demo', 'rtsp://h\x7fx/demo', 'rtsp://%zz/demo']

for (const layout of LAYOUTS) {
  t.test(`layout ${layout}: no single request ends a process`,
    { skip: existsSync(`${ROOT}dist/main.js`) ? false : 'dist/ not built (npm test builds it)' }, async t => {
      const gw = await startChildGateway(layout)
      t.teardown(async () => { await gw.stop() })
      const viewer = await startReferenceViewer(`rtsp://127.0.0.1:${gw.port}/live/demo`)
      t.teardown(async () => { await viewer.stop() })

      for (const head of BAD_HEADS) {
        const reply = await exchange(gw.port, head)
        t.match(reply, /^HTTP\/1\.[01] 400 /, `HTTP 400 for ${JSON.stringify(head.slice(0, 40))}`)
        t.ok(gw.alive(), 'every process alive')
      }
      for (const url of BAD_URLS) {
        const tunnel = await tunnelFirstRequest(gw.port,
        `DESCRIBE ${url} RTSP/1.0\r\nCSeq: 7\r\nAccept: application/sdp\r\n\r\n`)
        t.match(tunnel, /RTSP\/1\.0 400 Bad Request\r\nCSeq: 7\r\n/, `tunnel: RTSP 400 for ${url}`)
        const plain = await exchange(gw.port, `DESCRIBE ${url} RTSP/1.0\r\nCSeq: 8\r\n\r\n`, 3000, /\r\n\r\n/)
        t.match(plain, /^RTSP\/1\.0 400 Bad Request\r\nCSeq: 8\r\n/, `plain RTSP: RTSP 400 for ${url}`)
        t.ok(gw.alive(), 'every process alive')
      }
      // An rtsps:// URL is a legal URL: served, and mapped back to the client's own scheme and host.
      const rtsps = await tunnelFirstRequest(gw.port,
        'DESCRIBE rtsps://HOST/demo RTSP/1.0\r\nCSeq: 9\r\nAccept: application/sdp\r\n\r\n')
      t.match(rtsps, /RTSP\/1\.0 200 OK\r\n/, 'rtsps://HOST/demo is served')
      t.match(rtsps, /Content-Base: rtsps:\/\/HOST\/demo\//, 'Content-Base in the client\'s scheme and host')

      t.ok(await healthz(gw.port, 1000), '/healthz answers within 1 s')
      t.ok(viewer.worstGapMs() < STALL_MS, `the reference viewer kept playing (worst gap ${viewer.worstGapMs()} ms)`)
      t.same(gw.logged('TG_ERR_WORKER_EXIT'), [], 'no relay worker exited')
      t.same(gw.logged('TG_ERR_INTERNAL'), [], 'nothing reached the fault containment (each was refused as input)')
      const after = await runPeer('ffmpeg',
        ['-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${gw.port}/demo`, '-t', '1', '-f', 'null',
          '-'],
        { timeoutMs: 30_000 })
      t.equal(after.code, 0, `a new viewer plays afterwards (${after.stderr.slice(0, 200)})`)
      t.ok(gw.alive(), 'every process alive at the end')
    })
}
