/**
 * A session's backend connection (src/session/backend-link.ts) against real backends on loopback: the
 * read side replays live555MediaServer's captured bytes (RTSP replies and `$` frames) in random cuts,
 * through the session's own read buffer and without it; what waits for the connection; the next backend
 * when one refuses, 503 and 453; the write budget towards the backend; TEARDOWN and close.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import pino from 'pino'
import { buildConfig, type Config } from '../../../src/config/config.js'
import { createMetrics } from '../../../src/core/metrics.js'
import { BackendPool } from '../../../src/backends/pool.js'
import { resolveRoute } from '../../../src/backends/routes.js'
import { BackendLink } from '../../../src/session/backend-link.js'
import { ClientOutput } from '../../../src/session/client-output.js'
import type { ClientSide } from '../../../src/session/client-side.js'
import { containedTimers } from '../../../src/session/timers.js'
import { RtspDemuxer } from '../../../src/tunnel/codec/demux.js'
import { serializeMessage, type RtspRequest } from '../../../src/tunnel/codec/rtsp-message.js'
import { loadTcpConnections } from '../../helpers/pcap.js'

const CAPTURE = fileURLToPath(new URL('../../fixtures/captures/ffmpeg-to-live555MediaServer.pcap', import.meta.url))
/** What live555MediaServer sent on the tunnel's GET after its HTTP head: replies and `$` frames. */
const LIVE555 = (() => {
  const get = loadTcpConnections(CAPTURE).find(c => c.clientToServer.subarray(0, 4).toString() === 'GET ')!
  const s = get.serverToClient
  return s.subarray(s.indexOf('\r\n\r\n') + 4)
})()

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise(resolve => setTimeout(resolve, 2))
}

interface Backend { port: number, received: () => Buffer, sockets: net.Socket[] }

async function backend (t: Test, onConn: (s: net.Socket) => void = s => { s.resume() }): Promise<Backend> {
  const chunks: Buffer[] = []
  const sockets: net.Socket[] = []
  const server = net.createServer(s => {
    sockets.push(s)
    s.on('data', (c: Buffer) => chunks.push(c))
    onConn(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { port: (server.address() as net.AddressInfo).port, received: () => Buffer.concat(chunks), sockets }
}

/** A port nothing listens on. */
async function deadPort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

/** The client: a real loopback socket; what reaches the other end is collected. */
async function clientSide (t: Test): Promise<ClientSide & { received: () => Buffer, paused: number }> {
  const chunks: Buffer[] = []
  const server = net.createServer(s => { s.on('data', (c: Buffer) => chunks.push(c)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  await once(socket, 'connect')
  t.teardown(() => { socket.destroy(); server.close() })
  const c = {
    paused: 0,
    received: () => Buffer.concat(chunks),
    write: (buf: Buffer, done?: () => void) => socket.write(buf, done),
    get queued () { return socket.writableLength },
    onDrain: (cb: () => void) => { socket.on('drain', cb) },
    pauseInput: () => { c.paused++ },
    resumeInput: () => {},
    close: () => { socket.destroy() }
  }
  return c
}

function makeOwner () {
  const o = {
    messages: [] as string[],
    garbage: [] as string[],
    unavailable: [] as string[],
    closedBy: [] as boolean[],
    teardowns: 0,
    errors: [] as string[],
    closes: [] as string[],
    faults: [] as unknown[]
  }
  return {
    o,
    owner: {
      faultTag: '',
      fault: (err: unknown) => { o.faults.push(err) },
      forBackend: (req: RtspRequest) => serializeMessage(req),
      backendMessage: (m: { kind: string, raw?: Buffer }) => { o.messages.push(m.raw!.toString('latin1')) },
      backendGarbage: (reason: string) => { o.garbage.push(reason) },
      unavailable: (status: number, reason: string) => { o.unavailable.push(`${status} ${reason}`) },
      backendClosed: (wasClosing: boolean) => { o.closedBy.push(wasClosing) },
      teardownDone: () => { o.teardowns++ },
      touch: () => {},
      error: (code: string, reason: string) => { o.errors.push(`${code} ${reason}`) },
      close: (reason: string, outcome: string) => { o.closes.push(`${reason}/${outcome}`) }
    }
  }
}

async function makeLink (t: Test, backends: Array<{ name: string, port: number, maxSessions?: number }>,
  settings: Record<string, unknown> = {}) {
  const config: Config = buildConfig([{
    workers: 0,
    backends: backends.map(b => ({ name: b.name, url: `rtsp://127.0.0.1:${b.port}`, maxSessions: b.maxSessions ?? 0 })),
    ...settings
  }])
  const metrics = createMetrics({ defaultMetrics: false })
  const pool = new BackendPool(config, metrics)
  const client = await clientSide(t)
  const { o, owner } = makeOwner()
  const logger = pino({ level: 'silent' })
  const timers = containedTimers(owner)
  const out = new ClientOutput(client, {
    limits: config.limits, metrics, logger, clientAddress: '127.0.0.1:1', timers, owner: { closed: false, ...owner }
  })
  const link = new BackendLink({ config, pool, metrics, logger, timers, client, out, startedAt: performance.now() },
    owner)
  out.source = link
  client.onDrain(() => out.drained())
  t.teardown(() => { link.close(); link.abort() })
  const route = resolveRoute(config.routes, '/test.mkv')!
  return { link, pool, client, out, o, route }
}

/** The reference: the whole capture through one demuxer. */
const reference = (() => {
  const units = new RtspDemuxer({ maxHeadBytes: 16384, maxHeaders: 100, maxBodyBytes: 1 << 20 }).push(LIVE555)
  return {
    frames: Buffer.concat(units.flatMap(u => u.kind === 'frame' ? [u.raw] : [])),
    frameCount: units.filter(u => u.kind === 'frame').length,
    messages: units.flatMap(u => u.kind === 'response' || u.kind === 'request' ? [u.raw.toString('latin1')] : [])
  }
})()

for (const readBufferBytes of [0, 4096]) {
  t.test(`the captured live555 stream in random cuts (backend.readBufferBytes ${readBufferBytes}): frames to the ` +
    'client byte for byte, replies to the session in order', async t => {
    t.ok(reference.frameCount > 100 && reference.messages.length >= 5, 'the capture holds frames and replies')
    await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 30 }),
      async cuts => {
        const server = await backend(t, async s => {
          let at = 0
          for (let i = 0; at < LIVE555.length; i++) {
            const n = cuts[i % cuts.length]!
            s.write(LIVE555.subarray(at, at + n))
            at += n
            await new Promise(resolve => setImmediate(resolve))
          }
        })
        const { link, client, out, o, pool, route } = await makeLink(t, [{ name: 'live555', port: server.port }],
          { backend: { readBufferBytes } })
        link.connect(route)
        // Done when every byte has been read: the last reply may follow the last frame by one read.
        await until(() => pool.get('live555')!.bytes >= LIVE555.length &&
          client.received().length >= reference.frames.length && o.messages.length >= reference.messages.length)
        t.equal(client.received().equals(reference.frames), true, 'the frames, unchanged and in order')
        t.same(o.messages, reference.messages)
        t.equal(out.frames, reference.frameCount)
        t.equal(pool.get('live555')!.bytes, LIVE555.length, 'every byte counted for the backend')
        t.same([o.garbage, o.errors, o.faults], [[], [], []])
        link.close()
      }), { numRuns: 8 })
  })
}

t.test('what waits for the connection leaves in order once it opens; nothing is sent while idle', async t => {
  const server = await backend(t)
  const { link, route, o, pool } = await makeLink(t, [{ name: 'b', port: server.port }])
  link.send(Buffer.from('dropped'))
  t.equal(link.state, 'idle')
  link.connect(route)
  t.equal(link.state, 'connecting')
  t.equal(pool.get('b')!.sessions, 1, 'the backend is acquired')
  link.queue(Buffer.from('one '))
  const req: RtspRequest = {
    kind: 'request',
    method: 'OPTIONS',
    uri: 'rtsp://b/x',
    version: 'RTSP/1.0',
    headers: [['CSeq', '2']],
    body: Buffer.alloc(0)
  }
  link.queue(req)
  link.send(Buffer.from(' three'))
  await until(() => link.state === 'connected')
  link.send(Buffer.from(' four'))
  await until(() => server.received().toString().endsWith('four'))
  t.equal(server.received().toString(), 'one OPTIONS rtsp://b/x RTSP/1.0\r\nCSeq: 2\r\n\r\n three four')
  t.equal(link.bytes, server.received().length)
  link.close()
  link.close()
  t.equal(pool.get('b')!.sessions, 0, 'closed (twice): given back once')
  await until(() => server.sockets[0]!.readableEnded)
  t.pass('the backend got a FIN')
  t.same(o.errors, [])
})

t.test('past limits.pendingInputBytes before the connection opens: closed', async t => {
  const server = await backend(t)
  const {
    link,
    route,
    o
  } = await makeLink(t, [{ name: 'b', port: server.port }], { limits: { pendingInputBytes: 10 } })
  link.connect(route)
  link.queue(Buffer.alloc(10))
  t.same(o.closes, [], 'at the limit')
  link.queue(Buffer.alloc(1))
  t.same(o.errors, ['TG_ERR_RTSP_TOO_LARGE client sent too much before the backend connection opened'])
  t.same(o.closes, ['pending-overflow/client_error'])
})

t.test('a backend that refuses: the next one serving the route; none left: 503; all full: 453', async t => {
  const live = await backend(t)
  const dead = await deadPort()
  const { link, route, o, pool } = await makeLink(t, [{ name: 'dead', port: dead }, { name: 'live', port: live.port }])
  for (let i = 0; i < 5; i++) pool.acquire('live') // the less loaded, refusing one is chosen first
  link.connect(route)
  await until(() => link.state === 'connected')
  t.equal(link.backend?.config.name, 'live')
  t.match(o.errors, [/^TG_ERR_BACKEND_UNAVAILABLE dead: connect ECONNREFUSED/])
  t.equal(pool.get('dead')!.sessions, 0, 'the refusing one is given back')
  t.equal(pool.get('live')!.sessions, 6)
  t.equal(pool.isHealthy(pool.get('dead')!), false, 'and marked failed')

  const none = await makeLink(t, [{ name: 'x', port: await deadPort() }, { name: 'y', port: await deadPort() }])
  none.link.connect(none.route)
  await until(() => none.o.unavailable.length > 0)
  t.same(none.o.unavailable, ['503 no backend reachable'])
  t.equal(none.o.errors.length, 2, 'both were tried')

  const full = await makeLink(t, [{ name: 'f', port: live.port, maxSessions: 1 }])
  full.pool.acquire('f')
  full.link.connect(full.route)
  t.same(full.o.unavailable, ['453 all backends are full'])
  t.equal(full.link.state, 'idle')
})

t.test('a backend that reads nothing: past limits.backendOutputBytes the session closes', async t => {
  const server = await backend(t, s => { s.pause() })
  const { link, route, o, client } = await makeLink(t, [{ name: 'b', port: server.port }],
    { limits: { backendOutputBytes: 4096 } })
  link.connect(route)
  await until(() => link.state === 'connected')
  while (o.closes.length === 0 && link.bytes < 64 << 20) link.write(Buffer.alloc(1 << 20))
  t.ok(link.bytes >= 1 << 20, 'a write on an empty queue is taken whatever its size')
  t.ok(client.paused > 0, 'the client was paused at the high-water mark')
  t.match(o.errors,
    [/^TG_ERR_BACKEND_SLOW \d+ bytes would be queued towards the backend \(limits.backendOutputBytes 4096\)$/])
  t.same(o.closes, ['backend-too-slow/backend_error'])
})

t.test('teardown: the requests go out, the reply (or the grace time) ends it; later bytes are discarded',
  async t => {
    const server = await backend(t)
    const { link, route, o, client } = await makeLink(t, [{ name: 'b', port: server.port }],
      { backend: { teardownGraceMs: 60_000 } })
    link.connect(route)
    await until(() => link.state === 'connected')
    link.teardown([Buffer.from('TEARDOWN a\r\n'), Buffer.from('TEARDOWN b\r\n')])
    t.equal(link.state, 'closing')
    await until(() => server.received().length === 24)
    t.equal(server.received().toString(), 'TEARDOWN a\r\nTEARDOWN b\r\n')
    server.sockets[0]!.write('$\x00\x00\x01xRTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n')
    await until(() => o.teardowns > 0)
    t.same(o.messages, [], 'the reply is not parsed')
    t.equal(client.received().length, 0, 'nothing reaches the client')
    server.sockets[0]!.destroy()
    await until(() => o.closedBy.length > 0)
    t.same(o.closedBy, [true], 'closed while closing')

    const quiet = await makeLink(t, [{ name: 'b', port: server.port }], { backend: { teardownGraceMs: 20 } })
    quiet.link.connect(quiet.route)
    await until(() => quiet.link.state === 'connected')
    quiet.link.teardown([])
    await until(() => quiet.o.teardowns > 0)
    t.pass('a silent backend: the grace time ends it')
  })

t.test('a backend that closes, and one that sends garbage, are told to the session', async t => {
  const server = await backend(t)
  const { link, route, o } = await makeLink(t, [{ name: 'b', port: server.port }])
  link.connect(route)
  await until(() => link.state === 'connected' && server.sockets.length === 1)
  server.sockets[0]!.write('RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nHELLO\r\n\r\n')
  await until(() => o.garbage.length > 0)
  t.same(o.messages, ['RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n'], 'the reply before it')
  server.sockets[0]!.destroy()
  await until(() => o.closedBy.length > 0)
  t.same(o.closedBy, [false])
})
