/**
 * The portal's router to local relay workers (src/route/workers.ts) on its own, with real worker
 * processes and real loopback legs: which worker each leg is handed to (HRW of its key over the live
 * workers, draining ones last), the POSTs it keeps and relays to their GET's worker, the limits it
 * checks for the whole gateway, its per-address counts and their correction, and what a worker's
 * death does (its legs closed, its cookies forgotten, a restart; the other worker untouched).
 * The legs come from a door of the test's own that reads the head as the front door does.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { buildConfig } from '../../../src/config/config.js'
import { createMetrics, type GatewayMetrics } from '../../../src/core/metrics.js'
import { ownerOf } from '../../../src/balancer/hrw.js'
import { parseHttpHead, type HttpHead } from '../../../src/tunnel/codec/http-head.js'
import { WorkerPool } from '../../../src/route/workers.js'
import type { SessionSnapshot } from '../../../src/session/session-info.js'
import type { ProcessInfo } from '../../../src/ops/process-view.js'
import { ScriptedBackend } from '../../helpers/scripted-backend.js'
import { waitFor } from '../../helpers/wait.js'

/** Generous: worker processes start and answer slowly on a loaded machine. */
const LONG = 60_000

const WORKERS = [{ id: '0', weight: 1 }, { id: '1', weight: 1 }]
const ownerSlot = (key: string): number => Number(ownerOf(key, WORKERS))

/** A fresh cookie whose HRW owner among workers 0 and 1 is `slot`. */
function cookieFor (slot: number): string {
  for (;;) {
    const c = randomBytes(12).toString('hex')
    if (ownerSlot(c) === slot) return c
  }
}

/** A WebSocket key whose leg key (`ws:<key>`) is owned by `slot`. */
function wsKeyFor (slot: number): string {
  for (;;) {
    const k = randomBytes(16).toString('base64')
    if (ownerSlot(`ws:${k}`) === slot) return k
  }
}

const getHead = (cookie: string): string =>
  `GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`
const postHead = (cookie: string): string =>
  `POST /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\n` +
  'Content-Length: 32767\r\n\r\n'
const wsHead = (key: string): string =>
  'GET /live/cam1 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rtsp.onvif.org\r\n\r\n`
const options = (cseq: number): string => `OPTIONS rtsp://gw/live/cam1 RTSP/1.0\r\nCSeq: ${cseq}\r\n\r\n`
/** An RTSP request as a POST body carries it. */
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64')
/** An RTSP reply to CSeq `n` among what a client read. */
const replied = (got: string, n: number): boolean =>
  new RegExp(`RTSP/1\\.0 200 OK\\r\\n(?:[^\\r]+\\r\\n)*?CSeq: ${n}\\r\\n`).test(got)

interface Leg { socket: net.Socket, head: HttpHead | null, rest: Buffer }
interface Client { socket: net.Socket, got: () => string, closed: () => boolean }

interface Door {
  /** Connect a client that writes `first`, and take its leg once the door has read its head. */
  open: (first: string) => Promise<{ client: Client, leg: Leg }>
}

/**
 * A door of the test's own: reads each connection's head (HTTP, or a plain RTSP request) and gives
 * the leg paused, with the bytes after its head, as the front door gives it to its sink.
 */
async function door (t: Test): Promise<Door> {
  const ready: Leg[] = []
  const sockets: net.Socket[] = []
  const clients: net.Socket[] = []
  const server = net.createServer(socket => {
    sockets.push(socket)
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      if (buf.indexOf('\r\n\r\n') === -1) return
      socket.off('data', onData)
      socket.pause()
      if (/^[A-Z]+ \S+ RTSP\/1\.0\r\n/.test(buf.toString('latin1', 0, 80))) {
        ready.push({ socket, head: null, rest: buf })
        return
      }
      const r = parseHttpHead(buf)
      if (r.state !== 'ok') { socket.destroy(); return }
      ready.push({ socket, head: r.head, rest: buf.subarray(r.head.headLength) })
    }
    socket.on('data', onData)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  t.teardown(() => { for (const s of [...sockets, ...clients]) s.destroy(); server.close() })
  return {
    open: async first => {
      const socket = net.connect(port, '127.0.0.1')
      clients.push(socket)
      let got = ''
      let closed = false
      socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
      socket.on('error', () => {})
      socket.on('close', () => { closed = true })
      await once(socket, 'connect')
      socket.write(first)
      // One leg at a time: the next one ready is this client's.
      const leg = await waitFor(() => ready.shift(), 'the door to read the head', LONG)
      return { client: { socket, got: () => got, closed: () => closed }, leg }
    }
  }
}

interface Rig { pool: WorkerPool, metrics: GatewayMetrics, door: Door, backend: ScriptedBackend }

async function rig (t: Test, workers: number, settings: Record<string, unknown> = {}): Promise<Rig> {
  const backend = await ScriptedBackend.start()
  const config = buildConfig([{ workers, logLevel: 'silent', backends: [backend.url], ...settings }])
  const metrics = createMetrics({ defaultMetrics: false })
  const pool = new WorkerPool(config, metrics, pino({ level: 'silent' }))
  t.teardown(async () => { await pool.close(); await backend.close() })
  await pool.start(workers)
  return { pool, metrics, door: await door(t), backend }
}

const errors = async (m: GatewayMetrics, code: string): Promise<number> =>
  (await m.errorsTotal.get()).values.find(v => v.labels.code === code)?.value ?? 0

/** The sessions each worker lists, by slot. */
async function sessions (pool: WorkerPool): Promise<SessionSnapshot[][]> {
  const per = await pool.ask<SessionSnapshot[]>('tunnels')
  return per.sort((a, b) => a.slot - b.slot).map(p => p.data ?? [])
}

/** The slots whose worker holds a session of client address `client`. */
async function holders (pool: WorkerPool, client: string): Promise<number[]> {
  return (await sessions(pool)).flatMap((list, slot) => list.some(s => s.client === client) ? [slot] : [])
}

const pidOf = async (pool: WorkerPool, slot: number): Promise<number> =>
  (await pool.ask<ProcessInfo>('process', undefined, slot))[0]!.data!.pid!

t.test('no worker up: a leg is closed without an answer, counted TG_ERR_TUN_TOO_MANY', async t => {
  const { pool, metrics, door } = await rig(t, 0)
  t.equal(pool.size, 0)
  const cookie = cookieFor(0)
  const get = await door.open(getHead(cookie))
  pool.acceptGet(get.leg.socket, get.leg.head!, cookie, get.leg.rest, { clientAddress: '10.0.0.1' })
  const rtsp = await door.open(options(1))
  pool.acceptRtsp(rtsp.leg.socket, rtsp.leg.rest, { clientAddress: '10.0.0.1' })
  await waitFor(() => get.client.closed() && rtsp.client.closed(), 'both legs closed', LONG)
  t.equal(get.client.got(), '', 'the GET gets no answer')
  t.equal(rtsp.client.got(), '', 'nor does plain RTSP')
  t.equal(await errors(metrics, 'TG_ERR_TUN_TOO_MANY'), 2)
  t.equal(pool.tunnels, 0, 'a leg that went nowhere counts as no session')
  t.equal(pool.unpairedLegs, 0, 'nor as unpaired')
})

t.test('each GET, WebSocket and plain RTSP leg is handed to the worker its key ranks first', async t => {
  const { pool, metrics, door } = await rig(t, 2)
  t.same(pool.slotsInfo(), [{ id: 0, up: true, draining: false }, { id: 1, up: true, draining: false }])
  const want: Array<{ client: string, slot: number, transport: string }> = []
  for (const slot of [0, 1, 1, 0]) {
    const cookie = cookieFor(slot)
    const client = `10.1.0.${want.length + 1}`
    const { client: c, leg } = await door.open(getHead(cookie))
    pool.acceptGet(leg.socket, leg.head!, cookie, leg.rest, { clientAddress: client })
    // The worker answers: the portal never writes on a GET it hands over.
    await waitFor(() => c.got().startsWith('HTTP/1.0 200 OK\r\n'), 'the worker\'s GET reply', LONG)
    want.push({ client, slot, transport: 'http-tunnel' })
  }
  for (const slot of [1, 0]) {
    const client = `10.1.0.${want.length + 1}`
    const { client: c, leg } = await door.open(wsHead(wsKeyFor(slot)))
    pool.acceptWebSocket(leg.socket, leg.head!, leg.rest, { clientAddress: client })
    await waitFor(() => c.got().startsWith('HTTP/1.1 101 Switching Protocols\r\n'), 'the worker\'s 101', LONG)
    want.push({ client, slot, transport: 'websocket' })
  }
  // Plain RTSP has no key of its own: the n-th leg is keyed rtsp:<n>.
  for (let n = 0; n < 4; n++) {
    const client = `10.1.0.${want.length + 1}`
    const { client: c, leg } = await door.open(options(n + 1))
    pool.acceptRtsp(leg.socket, leg.rest, { clientAddress: client })
    // Its first request, read by the door, travels with the socket and is answered there.
    await waitFor(() => replied(c.got(), n + 1), `the reply to plain RTSP leg ${n}`, LONG)
    want.push({ client, slot: ownerSlot(`rtsp:${n}`), transport: 'rtsp' })
  }
  const lists = await sessions(pool)
  for (const w of want) {
    const on = lists.flatMap((l, slot) => l.filter(s => s.client === w.client).map(s => ({ slot, s })))
    t.equal(on.length, 1, `${w.client}: one session`)
    t.equal(on[0]?.slot, w.slot, `${w.client} (${w.transport}) on worker ${w.slot}`)
    t.equal(on[0]?.s.relay, `w${w.slot}`)
    t.equal(on[0]?.s.transport, w.transport)
  }
  t.equal(pool.tunnels, want.length, 'every leg handed over counts as a session of its address')
  t.equal(pool.tunnelsFrom('10.1.0.1'), 1, 'counted by address')
  t.equal(pool.unpairedLegs, 4, 'the four GETs wait for their POSTs')
  // The workers' metrics summed with the portal's: each worker counted the GETs it took.
  const text = await pool.metricsText(metrics)
  t.match(text, /^tunnelgate_legs_total\{leg="get",transport="http-tunnel"\} 4$/m)
  t.match(text, /^tunnelgate_legs_total\{leg="rtsp",transport="rtsp"\} 4$/m)
})

t.test('a POST stays in the portal and is relayed to its GET\'s worker, wherever hashing sends new GETs', async t => {
  const { pool, door } = await rig(t, 2)
  const cookie = cookieFor(0)
  t.equal(pool.setDraining(0, true), true)
  t.equal(pool.setDraining(7, true), false, 'no such worker')
  t.equal(pool.slotsInfo()[0]?.draining, true)
  const get = await door.open(getHead(cookie))
  pool.acceptGet(get.leg.socket, get.leg.head!, cookie, get.leg.rest, { clientAddress: '10.2.0.1' })
  await waitFor(() => get.client.got().startsWith('HTTP/1.0 200 OK'), 'the GET reply', LONG)
  t.same(await holders(pool, '10.2.0.1'), [1], 'a draining worker takes no new GET: its owner drains')
  t.equal(pool.unpairedLegs, 1)

  pool.setDraining(0, false)
  // The POST's first request comes with its head; its owner by hashing is worker 0 again.
  const post = await door.open(postHead(cookie) + b64(options(1)))
  pool.acceptPost(post.leg.socket, post.leg.head!, cookie, post.leg.rest, { clientAddress: '10.2.0.2' })
  await waitFor(() => replied(get.client.got(), 1), 'the reply to the request sent with the POST head', LONG)
  t.equal(pool.unpairedLegs, 0, 'the POST paired its GET')
  // Bytes read after the relay started: relayed as messages, answered on the GET.
  post.client.socket.write(b64(options(2)))
  await waitFor(() => replied(get.client.got(), 2), 'the reply to a request sent later on the POST', LONG)
  t.same(await holders(pool, '10.2.0.2'), [], 'a POST opens no session of its own')

  // The client drops its POST and posts again (QuickTime does): the re-POST joins the same tunnel.
  post.client.socket.destroy()
  const again = await door.open(postHead(cookie) + b64(options(3)))
  pool.acceptPost(again.leg.socket, again.leg.head!, cookie, again.leg.rest, { clientAddress: '10.2.0.3' })
  await waitFor(() => replied(get.client.got(), 3), 'the reply to the re-POST\'s request', LONG)
  t.equal(pool.unpairedLegs, 0, 'a re-POST to an open GET is never unpaired')

  // A second GET for the live cookie goes where its tunnel is, and is dropped there.
  const dup = await door.open(getHead(cookie))
  pool.acceptGet(dup.leg.socket, dup.leg.head!, cookie, dup.leg.rest, { clientAddress: '10.2.0.4' })
  // Closed, or answered (wrongly) by a worker that took it for a new tunnel.
  await waitFor(() => dup.client.closed() || dup.client.got() !== '', 'the duplicate GET dealt with', LONG)
  t.equal(dup.client.got(), '', 'the duplicate gets no answer')
  t.same(await holders(pool, '10.2.0.4'), [], 'and no session anywhere')
  const late = await door.open(postHead(cookie) + b64(options(4)))
  pool.acceptPost(late.leg.socket, late.leg.head!, cookie, late.leg.rest, { clientAddress: '10.2.0.5' })
  await waitFor(() => replied(get.client.got(), 4), 'the live tunnel still getting its POSTs', LONG)
  t.notOk(get.client.closed(), 'the live tunnel is untouched')
})

t.test('a POST before its GET: sent to the cookie\'s owner and unpaired until the GET comes', async t => {
  const { pool, door } = await rig(t, 2)
  const cookie = cookieFor(1)
  const post = await door.open(postHead(cookie) + b64(options(1)))
  pool.acceptPost(post.leg.socket, post.leg.head!, cookie, post.leg.rest, { clientAddress: '10.3.0.1' })
  t.equal(pool.unpairedLegs, 1)
  const get = await door.open(getHead(cookie))
  pool.acceptGet(get.leg.socket, get.leg.head!, cookie, get.leg.rest, { clientAddress: '10.3.0.2' })
  t.equal(pool.unpairedLegs, 0, 'the GET pairs the waiting POST')
  // The worker held the POST with its early request; the GET there pairs it and the request is answered.
  await waitFor(() => replied(get.client.got(), 1), 'the held POST\'s request answered on the GET', LONG)
  t.same(await holders(pool, '10.3.0.2'), [1])
  t.notOk(post.client.closed())
})

t.test('per-address counts: raised at hand-off, lowered by session ends, corrected by a status reply', async t => {
  const { pool, door } = await rig(t, 2)
  const a = cookieFor(0)
  const b = cookieFor(1)
  const getA = await door.open(getHead(a))
  pool.acceptGet(getA.leg.socket, getA.leg.head!, a, getA.leg.rest, { clientAddress: '10.4.0.1' })
  const getB = await door.open(getHead(b))
  pool.acceptGet(getB.leg.socket, getB.leg.head!, b, getB.leg.rest, { clientAddress: '10.4.0.1' })
  t.equal(pool.tunnelsFrom('10.4.0.1'), 2)
  t.equal(pool.unpairedLegs, 2)
  // A duplicate: counted at hand-off, dropped by the worker without a session.
  const dup = await door.open(getHead(a))
  pool.acceptGet(dup.leg.socket, dup.leg.head!, a, dup.leg.rest, { clientAddress: '10.4.0.1' })
  t.equal(pool.tunnelsFrom('10.4.0.1'), 3, 'the portal cannot know yet')
  t.equal(pool.unpairedLegs, 2, 'a duplicate is never unpaired')
  await waitFor(() => dup.client.closed(), 'the duplicate dropped', LONG)
  const status = await pool.status()
  t.equal(status.length, 2)
  t.equal(status.reduce((n, s) => n + s.tunnels, 0), 2, 'the workers hold two sessions')
  t.equal(pool.tunnelsFrom('10.4.0.1'), 2, 'their status reply corrects the portal\'s count')
  t.equal(pool.tunnels, 2)

  getB.client.socket.destroy()
  await waitFor(() => pool.tunnelsFrom('10.4.0.1') === 1, 'the worker\'s session end to lower the count', LONG)
  await waitFor(() => pool.unpairedLegs === 1, 'the tunnel\'s end: its GET no longer unpaired', LONG)
  // Its cookie is forgotten: a POST for it now waits for a GET (unpaired) instead of joining one.
  const post = await door.open(postHead(b))
  pool.acceptPost(post.leg.socket, post.leg.head!, b, post.leg.rest, { clientAddress: '10.4.0.1' })
  t.equal(pool.unpairedLegs, 2)
})

t.test('the gateway-wide limits are checked in the portal, though each worker is under them', async t => {
  const { pool, metrics, door } = await rig(t, 2, { limits: { maxTunnelsPerIp: 2 } })
  for (const slot of [0, 1]) {
    const cookie = cookieFor(slot)
    const { leg } = await door.open(getHead(cookie))
    pool.acceptGet(leg.socket, leg.head!, cookie, leg.rest, { clientAddress: '10.5.0.1' })
  }
  const cookie = cookieFor(0)
  const third = await door.open(getHead(cookie))
  pool.acceptGet(third.leg.socket, third.leg.head!, cookie, third.leg.rest, { clientAddress: '10.5.0.1' })
  await waitFor(() => third.client.closed(), 'the third GET refused', LONG)
  t.match(third.client.got(), /^HTTP\/1\.0 503 [^\r]*\r\n(?:[^\r]+\r\n)*Retry-After: 5\r\n/)
  const rtsp = await door.open(options(1))
  pool.acceptRtsp(rtsp.leg.socket, rtsp.leg.rest, { clientAddress: '10.5.0.1' })
  await waitFor(() => rtsp.client.closed(), 'the plain RTSP leg refused', LONG)
  t.match(rtsp.client.got(), /^RTSP\/1\.0 503 Service Unavailable\r\nRetry-After: 5\r\n/)
  t.equal(await errors(metrics, 'TG_ERR_TUN_IP_LIMIT'), 2, 'counted in the portal')
  t.equal(pool.tunnelsFrom('10.5.0.1'), 2, 'refused legs count nothing')
  t.same((await sessions(pool)).map(l => l.length), [1, 1], 'no worker saw the refused legs')
  const fourth = cookieFor(1)
  const other = await door.open(getHead(fourth))
  pool.acceptGet(other.leg.socket, other.leg.head!, fourth, other.leg.rest, { clientAddress: '10.5.0.2' })
  await waitFor(() => other.client.got().startsWith('HTTP/1.0 200 OK'), 'another address let in', LONG)
})

t.test('a worker that dies: its legs closed, its cookies forgotten, restarted; the other one untouched', async t => {
  const { pool, metrics, door } = await rig(t, 2)
  const dead = cookieFor(0)
  const alive = cookieFor(1)
  const tunnel = async (cookie: string, ip: string): Promise<{ get: Client, post: Client }> => {
    const get = await door.open(getHead(cookie))
    pool.acceptGet(get.leg.socket, get.leg.head!, cookie, get.leg.rest, { clientAddress: ip })
    const post = await door.open(postHead(cookie) + b64(options(1)))
    pool.acceptPost(post.leg.socket, post.leg.head!, cookie, post.leg.rest, { clientAddress: ip })
    await waitFor(() => replied(get.client.got(), 1), `the tunnel of ${ip} working`, LONG)
    return { get: get.client, post: post.client }
  }
  const d = await tunnel(dead, '10.6.0.1')
  const a = await tunnel(alive, '10.6.0.2')
  t.equal(pool.tunnels, 2)
  const pid = await pidOf(pool, 0)
  process.kill(pid, 'SIGKILL')
  await waitFor(() => d.get.closed(), 'the GET held by the dead worker closed', LONG)
  await waitFor(() => d.post.closed(), 'its POST, kept in the portal, closed', LONG)
  await waitFor(async () => await errors(metrics, 'TG_ERR_WORKER_EXIT') === 1, 'the exit counted', LONG)
  t.equal(pool.tunnelsFrom('10.6.0.1'), 0, 'the dead worker\'s sessions no longer count')
  t.equal(pool.tunnels, 1)

  a.post.socket.write(b64(options(2)))
  await waitFor(() => replied(a.get.got(), 2), 'the other worker\'s tunnel still answering', LONG)
  t.notOk(a.get.closed())

  await waitFor(() => pool.slotsInfo()[0]?.up === true, 'worker 0 restarted', LONG)
  t.not(await pidOf(pool, 0), pid, 'a new process')
  // The dead tunnel's cookie is no longer open anywhere: a POST for it waits for a GET.
  const post = await door.open(postHead(dead) + b64(options(5)))
  pool.acceptPost(post.leg.socket, post.leg.head!, dead, post.leg.rest, { clientAddress: '10.6.0.3' })
  t.equal(pool.unpairedLegs, 1)
  const get = await door.open(getHead(dead))
  pool.acceptGet(get.leg.socket, get.leg.head!, dead, get.leg.rest, { clientAddress: '10.6.0.4' })
  await waitFor(() => replied(get.client.got(), 5), 'the restarted worker taking the reconnected tunnel', LONG)
  t.same(await holders(pool, '10.6.0.4'), [0])
  t.equal(await errors(metrics, 'TG_ERR_WORKER_EXIT'), 1, 'one exit only')

  const pids = [await pidOf(pool, 0), await pidOf(pool, 1)]
  await pool.close()
  t.same(pool.slotsInfo().map(s => s.up), [false, false], 'closed: every worker down')
  for (const p of pids) t.throws(() => process.kill(p, 0), { code: 'ESRCH' }, `worker ${p} exited`)
  t.equal(await errors(metrics, 'TG_ERR_WORKER_EXIT'), 1, 'an exit on close is no fault, and not restarted')
})
