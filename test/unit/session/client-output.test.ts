/**
 * The session's output towards its client (src/session/client-output.ts): whole `$` frames dropped past
 * limits.dropFramesAboveBytes (never an RTSP message), backpressure to the backend's reads through the
 * `ReadGate`, the stall timer (driven by hand), and read buffer bytes written in place or copied. The
 * client is a real loopback socket still connecting, so what it queues is exact.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import pino from 'pino'
import { buildConfig } from '../../../src/config/config.js'
import { createMetrics } from '../../../src/core/metrics.js'
import { ClientOutput, type ReadSource } from '../../../src/session/client-output.js'
import type { ClientSide } from '../../../src/session/client-side.js'
import { ReadGate } from '../../../src/session/read-gate.js'
import type { SessionTimers, TimerHandle } from '../../../src/session/timers.js'

const DEFAULT_LIMITS = buildConfig([{}]).limits

async function socketPair (t: Test): Promise<{ port: number }> {
  const server = net.createServer(s => { s.resume() })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return { port: (server.address() as net.AddressInfo).port }
}

/** A client side over a real socket, recording the buffers it was handed. */
function client (t: Test, port: number, withWriteBoth = true): ClientSide & { socket: net.Socket, handed: Buffer[] } {
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  const handed: Buffer[] = []
  const c: ClientSide & { socket: net.Socket, handed: Buffer[] } = {
    socket,
    handed,
    write: (buf, done) => { handed.push(buf); return socket.write(buf, done) },
    get queued () { return socket.writableLength },
    onDrain: cb => { socket.on('drain', cb) },
    pauseInput: () => {},
    resumeInput: () => {},
    close: () => { socket.destroy() }
  }
  if (withWriteBoth) {
    c.writeBoth = (a, b, done) => {
      handed.push(a, b)
      socket.cork()
      socket.write(a)
      const ok = socket.write(b, done)
      socket.uncork()
      return ok
    }
  }
  return c
}

function manualTimers (): SessionTimers & { armed: Map<TimerHandle, () => void>, fireAll: () => void } {
  const armed = new Map<TimerHandle, () => void>()
  return {
    armed,
    set (_where, _ms, fn) { const h = setTimeout(() => {}, 0); clearTimeout(h); armed.set(h, fn); return h },
    clear (h) { if (h !== null && h !== undefined) armed.delete(h) },
    fireAll () { const fns = [...armed.values()]; armed.clear(); for (const fn of fns) fn() }
  }
}

function setup (c: ClientSide, limits: Partial<typeof DEFAULT_LIMITS>) {
  const metrics = createMetrics({ defaultMetrics: false })
  const timers = manualTimers()
  const owner = { closed: false, errors: [] as string[], closes: [] as string[] }
  const out = new ClientOutput(c, {
    limits: { ...DEFAULT_LIMITS, ...limits },
    metrics,
    logger: pino({ level: 'silent' }),
    clientAddress: '127.0.0.1:1',
    timers,
    owner: {
      get closed () { return owner.closed },
      error: (code, reason) => { owner.errors.push(`${code} ${reason}`) },
      close: (reason, outcome) => { owner.closes.push(`${reason}/${outcome}`); owner.closed = true }
    }
  })
  const count = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const got = await metrics.registry.getSingleMetric(name)!.get()
    return got.values.find(v => Object.entries(labels).every(([k, w]) => v.labels[k] === w))?.value ?? 0
  }
  return { out, metrics, timers, owner, count }
}

const frame = (n: number): Buffer => { const b = Buffer.alloc(4 + n); b[0] = 0x24; b.writeUInt16BE(n, 2); return b }

t.test('past dropFramesAboveBytes whole frames are dropped, never a message; one limit hit per episode', async t => {
  const { port } = await socketPair(t)
  const c = client(t, port)
  const { out, count } = setup(c, { dropFramesAboveBytes: 1000, clientStallMs: 0 })
  out.write(frame(996), 1)
  t.equal(c.queued, 1000, 'at the limit: written')
  out.write(frame(10), 1)
  t.equal(c.queued, 1014)
  out.write(frame(10), 1)
  out.writeBoth(frame(10), frame(10), 2)
  t.equal(c.queued, 1014, 'past it: dropped')
  out.write(Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n'))
  t.equal(c.queued, 1014 + 28, 'an RTSP message is always written')
  t.equal(out.bytes, 1000 + 14 + 28, 'dropped frames are not counted as sent')
  t.equal(await count('tunnelgate_frames_dropped_total'), 3)
  t.equal(await count('tunnelgate_limit_hits_total', { limit: 'limits.dropFramesAboveBytes' }), 1)
  t.equal(await count('tunnelgate_bytes_total', { direction: 'backend_to_client' }), out.bytes)
  await once(c.socket, 'connect')
  while (c.queued > 0) await new Promise(resolve => setTimeout(resolve, 2))
  c.socket.cork()
  out.write(frame(2000), 1)
  t.equal(out.bytes, 1042 + 2004, 'drained: frames flow again')
  out.write(frame(1), 1)
  t.equal(await count('tunnelgate_limit_hits_total', { limit: 'limits.dropFramesAboveBytes' }), 2,
    'a new episode counts again')
})

t.test('a full client pauses the backend read and arms the stall timer; drained clears both', async t => {
  const { port } = await socketPair(t)
  const c = client(t, port)
  const { out, timers, owner } = setup(c, { dropFramesAboveBytes: 0, clientStallMs: 5000 })
  const src = client(t, port).socket
  const gate = new ReadGate(src)
  out.source = { borrowed: false, gate } satisfies ReadSource
  out.write(frame(100), 1)
  t.equal(src.isPaused(), false, 'under the high-water mark')
  t.equal(timers.armed.size, 0)
  out.write(frame(c.socket.writableHighWaterMark), 1)
  t.equal(src.isPaused(), true, 'past it: the backend is paused')
  t.equal(timers.armed.size, 1, 'the stall timer is armed')
  out.write(frame(10), 1)
  t.equal(timers.armed.size, 1, 'once')
  out.drained()
  t.equal(src.isPaused(), false)
  t.equal(timers.armed.size, 0, 'drained: the stall timer is cleared')
  t.same(owner.closes, [])
})

t.test('a client that stays full is closed at clientStallMs; one that emptied is not', async t => {
  const { port } = await socketPair(t)
  const c = client(t, port)
  const { out, timers, owner, count } = setup(c, { dropFramesAboveBytes: 0, clientStallMs: 5000 })
  out.write(frame(c.socket.writableHighWaterMark), 1)
  timers.fireAll()
  t.same(owner.errors, [`TG_ERR_TUN_OUTPUT_OVERFLOW client read nothing for 5000 ms (${c.queued} bytes queued)`])
  t.same(owner.closes, ['client-stalled/client_slow'])
  t.equal(await count('tunnelgate_limit_hits_total', { limit: 'limits.clientStallMs' }), 1)
  out.write(frame(1), 1)
  t.equal(out.bytes, c.socket.writableHighWaterMark + 4, 'closed: nothing more is written')

  const d = client(t, port)
  const second = setup(d, { dropFramesAboveBytes: 0, clientStallMs: 5000 })
  second.out.write(frame(d.socket.writableHighWaterMark), 1)
  await once(d.socket, 'connect')
  while (d.queued > 0) await new Promise(resolve => setTimeout(resolve, 2))
  second.timers.fireAll()
  t.same(second.owner.closes, [], 'nothing queued when the timer fires: kept')
})

t.test('clientStallMs 0 arms no timer; dropFramesAboveBytes > 0 never pauses the backend', async t => {
  const { port } = await socketPair(t)
  const a = client(t, port)
  const first = setup(a, { dropFramesAboveBytes: 0, clientStallMs: 0 })
  first.out.write(frame(a.socket.writableHighWaterMark), 1)
  t.equal(first.timers.armed.size, 0)
  const b = client(t, port)
  const second = setup(b, { dropFramesAboveBytes: 1 << 20, clientStallMs: 5000 })
  const src = client(t, port).socket
  second.out.source = { borrowed: false, gate: new ReadGate(src) }
  second.out.write(frame(b.socket.writableHighWaterMark), 1)
  t.equal(src.isPaused(), false)
  t.equal(second.timers.armed.size, 0)
})

t.test('read buffer bytes: in place on an empty client (held until written), copied behind queued bytes',
  async t => {
    const { port } = await socketPair(t)
    const c = client(t, port)
    const { out } = setup(c, { dropFramesAboveBytes: 0, clientStallMs: 0 })
    const src = client(t, port).socket
    const source = { borrowed: true, gate: new ReadGate(src) }
    out.source = source
    const a = frame(8)
    out.write(a, 1)
    t.equal(c.handed[0], a, 'in place: the read buffer itself')
    t.equal(src.isPaused(), true, 'queued: the backend reads nothing into the buffer')
    const b = frame(8)
    const b2 = frame(4)
    out.writeBoth(b, b2, 2)
    t.not(c.handed[1], b, 'behind queued bytes: a copy')
    t.not(c.handed[2], b2)
    t.same(c.handed.slice(1), [b, b2], 'of the same bytes')
    await once(c.socket, 'connect')
    while (src.isPaused()) await new Promise(resolve => setTimeout(resolve, 2))
    t.pass('the write in place left: the backend reads again')
    source.borrowed = false
    const m = Buffer.from('RTSP/1.0 200 OK\r\n\r\n')
    out.write(m)
    t.equal(c.handed.at(-1), m, 'not borrowed: written as is')
  })

t.test('a client without writeBoth gets the pair concatenated in one write', async t => {
  const { port } = await socketPair(t)
  const c = client(t, port, false)
  const { out } = setup(c, { dropFramesAboveBytes: 0, clientStallMs: 0 })
  out.writeBoth(frame(2), frame(3), 2)
  t.same(c.handed, [Buffer.concat([frame(2), frame(3)])])
  t.equal(out.bytes, 13)
})

t.test('a closed session writes nothing', async t => {
  const { port } = await socketPair(t)
  const c = client(t, port)
  const { out, owner } = setup(c, {})
  owner.closed = true
  out.write(frame(1), 1)
  t.same(c.handed, [])
  t.equal(out.bytes, 0)
})
