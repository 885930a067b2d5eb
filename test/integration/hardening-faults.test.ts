/**
 * Issue 5 fault stage, each with real sockets and a healthy neighbour tunnel that must be untouched:
 * backend refuses (next backend / RTSP 503), resets mid-session (legs closed), stalls mid-response
 * (RTSP 504), sends garbage (RTSP 502); a relay worker process killed (restarted, portal survives);
 * SIGTERM drain of the real process `node bin/tunnelgate.js` (stops accepting, lets tunnels run up to
 * the deadline, TEARDOWN for the rest, exit 0). Leak checks after the in-process cases.
 */
import t from 'tap'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { readFileSync, existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { startTestGateway, errorCount } from '../helpers/gateway-harness.js'
import { waitFor } from '../helpers/wait.js'
import { TunnelClient, destroyAllClients } from '../helpers/tunnel-client.js'
import { ScriptedBackend, dssScript } from '../helpers/scripted-backend.js'
import { assertNoLeaks, leakSnapshot } from '../helpers/leaks.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { freePort } from '../helpers/ports.js'
import { childrenOf } from '../fuzz/proc.js'

t.teardown(() => { destroyAllClients() })
const newCookie = (): string => randomBytes(16).toString('base64url')
/** Poll an async predicate until true (deadline → throws). */
async function until (fn: () => Promise<boolean> | boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}
const open = async (port: number): Promise<TunnelClient> => await TunnelClient.open(port, { cookie: newCookie() })

t.test('backend refuses: next backend, then RTSP 503 + Retry-After', async t => {
  const good = await ScriptedBackend.start()
  t.teardown(() => good.close())
  const dead = `rtsp://127.0.0.1:${await freePort()}`
  const gw = await startTestGateway(t, [dead, good])
  const only = await startTestGateway(t, [dead])
  const before = await leakSnapshot(gw)
  for (let i = 0; i < 3; i++) {
    const c = await open(gw.port)
    t.equal((await c.request('DESCRIBE')).status, 200, `tunnel ${i}: served by the live backend`)
    c.close()
  }
  const c = await open(only.port)
  const r = await c.request('DESCRIBE')
  t.equal(r.status, 503, 'no backend reachable: 503')
  t.equal(getHeader(r, 'Retry-After'), '5', 'with Retry-After')
  t.equal(getHeader(r, 'CSeq'), '1', 'echoing the CSeq')
  c.close()
  await assertNoLeaks(gw, before, [good])
})

t.test('backend resets, stalls mid-response, sends garbage: 502/504/legs closed; neighbours untouched', async t => {
  const backend = await ScriptedBackend.start(dssScript({
    before: (req, conn) => {
      const path = /\/fault\/(\w+)/.exec(req.uri)?.[1]
      if (path === 'reset') { conn.socket.resetAndDestroy(); return true }
      if (path === 'stall') {
        conn.send(
          `RTSP/1.0 200 OK\r\nCSeq: ${getHeader(req, 'CSeq') ?? ''}\r\nContent-Type: application/sdp\r\nContent-Len`
        )
        return true
      }
      if (path === 'garbage') {
        conn.send(Buffer.from('\x00\x01\x02HELLO garbage \xff\xfe\r\n\r\n', 'latin1'))
        return true
      }
      return false
    }
  }))
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { backend: { replyTimeoutMs: 800 } })
  const before = await leakSnapshot(gw)
  const neighbour = await open(gw.port)
  const { session } = await neighbour.play()
  t.ok(session !== '', 'the neighbour plays')

  const reset = await open(gw.port)
  const { bytes } = reset.build('DESCRIBE', 'rtsp://gw.example.net/live/cam1/fault/reset')
  await reset.post.send(bytes)
  await reset.get.waitClosed(3000, 'GET closed after the backend reset')
  await reset.post.waitClosed(3000, 'POST closed after the backend reset')
  t.pass('reset: the client legs are closed')

  const stall = await open(gw.port)
  const s = await stall.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1/fault/stall', [], { timeoutMs: 5000 })
  t.equal(s.status, 504, 'stall mid-response: RTSP 504')
  stall.close()

  const garbage = await open(gw.port)
  const g = await garbage.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1/fault/garbage', [], { timeoutMs: 5000 })
  t.equal(g.status, 502, 'garbage: RTSP 502')
  await garbage.get.waitClosed(3000, 'tunnel closed after garbage')

  t.equal(
    (await neighbour.request('GET_PARAMETER', neighbour.url, [['Session', session]])).status,
    200,
    'the neighbour tunnel is untouched'
  )
  t.equal(await errorCount(gw, 'TG_ERR_BACKEND_CLOSED'), 1)
  t.equal(await errorCount(gw, 'TG_ERR_BACKEND_TIMEOUT'), 1)
  t.equal(await errorCount(gw, 'TG_ERR_BACKEND_PROTOCOL'), 1)
  neighbour.close(); reset.close()
  await assertNoLeaks(gw, before, [backend])
})

t.test('relay worker killed: its tunnel closes, it is restarted, the portal keeps serving', async t => {
  const backend = await ScriptedBackend.start()
  t.teardown(() => backend.close())
  const gw = await startTestGateway(t, [backend], { workers: 1 })
  const c = await open(gw.port)
  t.equal((await c.request('DESCRIBE', c.url, [], { timeoutMs: 5000 })).status, 200, 'a tunnel through the worker')
  const pids = childrenOf(process.pid, /worker\.(ts|js)/)
  t.equal(
    pids.length,
    1,
    `one worker process (${pids.map(p => readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')).join(' | ')})`
  )
  // Status and /metrics queries keep going to the worker while it dies: an IPC write that fails
  // with EPIPE must not surface as an uncaught error in the portal (it did, once, at teardown).
  let querying = true
  const queries = (async () => {
    while (querying) {
      await Promise.all([
        gw.workers!.status(),
        fetch(`http://127.0.0.1:${gw.opsPort}/metrics`).then(async r => await r.text())
      ])
    }
  })()
  await new Promise(resolve => setTimeout(resolve, 50))
  process.kill(pids[0]!, 'SIGKILL')
  await c.get.waitClosed(5000, 'the tunnel of the killed worker closed')
  await until(async () => await errorCount(gw, 'TG_ERR_WORKER_EXIT') === 1, 'worker exit counted', 3000)
  t.equal(await errorCount(gw, 'TG_ERR_WORKER_EXIT'), 1, 'TG_ERR_WORKER_EXIT counted')
  const health = await fetch(`http://127.0.0.1:${gw.port}/healthz`)
  t.equal(health.status, 200, 'the portal still answers')
  querying = false
  await queries
  await waitFor(
    () => {
      const p = childrenOf(process.pid, /worker\.(ts|js)/)
      return p.length === 1 && p[0] !== pids[0]
    },
    'the worker restarted',
    10_000
  )
  let ok = false
  for (let i = 0; i < 50 && !ok; i++) {
    let n: TunnelClient | null = null
    try {
      n = await open(gw.port)
      ok = (await n.request('DESCRIBE', n.url, [], { timeoutMs: 2000 })).status === 200
    } catch {}
    n?.close()
    if (!ok) await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.ok(ok, 'a new tunnel works through the restarted worker')
})

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

t.test(
  'SIGTERM drain of the real process: stop accepting, finish up to the deadline, TEARDOWN the rest, exit 0',
  { skip: existsSync(`${ROOT}dist/main.js`) ? false : 'dist/ not built (npm test builds it)' },
  async t => {
    const backend = await ScriptedBackend.start()
    t.teardown(() => backend.close())
    const port = await freePort()
    const child = spawn(
      process.execPath,
      [
        'bin/tunnelgate.js',
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--ops-port',
        '0',
        '--workers',
        '0',
        '--backend',
        backend.url,
        '--log-level',
        'warn'
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }
    )
    let stderr = ''
    child.stderr.on('data', d => {
      stderr += String(d)
    })
    child.stdout.resume()
    const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    await until(
      async () =>
        await new Promise<boolean>(resolve => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy()
            resolve(true)
          })
          s.on('error', () => resolve(false))
        }),
      'the gateway listening',
      15_000
    )
    const playing = await open(port)
    const { session } = await playing.play()
    const finishing = await open(port)
    const fin = await finishing.play()
    // (health probes may open other backend connections: pick the sessions' own by their PLAY)
    const playConns = (): typeof backend.conns => backend.conns.filter(c => c.requests().some(r => r.method === 'PLAY'))
    t.equal(playConns().length, 2, 'two backend sessions')
    const sentAt = Date.now()
    child.kill('SIGTERM')
    // Stops accepting at once.
    await until(
      async () =>
        await new Promise<boolean>(resolve => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy()
            resolve(false)
          })
          s.on('error', () => resolve(true))
        }),
      'new connections refused',
      3000
    )
    t.pass('new connections are refused during the drain')
    // Open tunnels keep working during the drain; one finishes on its own.
    t.equal(
      (await playing.request('GET_PARAMETER', playing.url, [['Session', session]])).status,
      200,
      'a tunnel still works while draining'
    )
    t.equal((await finishing.request('TEARDOWN', finishing.url, [['Session', fin.session]])).status, 200)
    finishing.close()
    // The rest get TEARDOWN at the deadline, then the process exits 0.
    const code = await exited
    t.equal(code, 0, `exit 0 (stderr: ${stderr.slice(0, 300)})`)
    const elapsed = Date.now() - sentAt
    t.ok(elapsed >= 3000 && elapsed < 12_000, `exited after the drain deadline (${elapsed} ms)`)
    const first = playConns().find(c =>
      c.requests().some(r => getHeader(r, 'Session') === session && r.method === 'PLAY')
    )!
    const td = first.requests().filter(r => r.method === 'TEARDOWN')
    t.equal(td.length, 1, 'the still-open tunnel got a TEARDOWN from the gateway')
    t.equal(td[0] === undefined ? undefined : getHeader(td[0], 'Session'), session, 'for its session')
    t.equal(
      getHeader(td[0] ?? { headers: [] } as never, 'User-Agent'),
      'tunnelgate',
      'sent by the gateway, not the client'
    )
    await playing.get.waitClosed(3000, 'the drained client closed')
    await waitFor(() => backend.conns.every(c => c.closed), 'backend connections closed', 3000)
  }
)
