/**
 * Flow control of a source read into one reused buffer (src/session/read-gate.ts), on a real loopback
 * socket: paused while the sink is full or holds a write made in place, resumed when neither holds.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { ReadGate } from '../../../src/session/read-gate.js'

async function source (t: Test): Promise<net.Socket> {
  const server = net.createServer(s => { t.teardown(() => { s.destroy() }) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const s = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  await once(s, 'connect')
  s.resume()
  t.teardown(() => { s.destroy(); server.close() })
  return s
}

t.test('the sink full: paused until it drains', async t => {
  const s = await source(t)
  const g = new ReadGate(s)
  g.drained()
  t.equal(s.isPaused(), false, 'a drain with nothing waiting changes nothing')
  g.full()
  t.equal(s.isPaused(), true)
  g.full()
  g.drained()
  t.equal(s.isPaused(), false, 'one drain after two full: resumed')
})

t.test('a write in place is allowed on an empty sink only', async t => {
  const g = new ReadGate(await source(t))
  t.equal(g.inPlace(0), true)
  t.equal(g.inPlace(1), false, 'bytes queued: copy')
})

t.test('a write in place that was queued holds the source until its callback', async t => {
  const s = await source(t)
  const g = new ReadGate(s)
  t.equal(g.inPlace(0), true)
  g.afterWrite(0)
  t.equal(s.isPaused(), false, 'the sink took it all: read on')
  g.written()
  t.equal(g.inPlace(0), true)
  g.afterWrite(500)
  t.equal(s.isPaused(), true, 'queued: the buffer may not be read into')
  g.written()
  t.equal(s.isPaused(), false, 'the write left: resumed')
})

t.test('two writes in place: resumed after the last callback', async t => {
  const s = await source(t)
  const g = new ReadGate(s)
  g.inPlace(0)
  g.afterWrite(10)
  g.inPlace(0)
  g.afterWrite(20)
  g.written()
  t.equal(s.isPaused(), true, 'one write still holds the buffer')
  g.written()
  t.equal(s.isPaused(), false)
})

t.test('both reasons: resumed only when neither holds', async t => {
  const s = await source(t)
  const g = new ReadGate(s)
  g.inPlace(0)
  g.afterWrite(100)
  g.full()
  g.written()
  t.equal(s.isPaused(), true, 'the write left, the sink is still full')
  g.drained()
  t.equal(s.isPaused(), false)
  g.inPlace(0)
  g.afterWrite(100)
  g.full()
  g.drained()
  t.equal(s.isPaused(), true, 'drained, the write is still held')
  g.written()
  t.equal(s.isPaused(), false)
})

t.test('afterWrite with no write in place in flight does not pause', async t => {
  const s = await source(t)
  const g = new ReadGate(s)
  g.afterWrite(100)
  t.equal(s.isPaused(), false)
})

t.test('release: read freely whatever held the source', async t => {
  const s = await source(t)
  const g = new ReadGate(s)
  g.inPlace(0)
  g.afterWrite(100)
  g.full()
  g.release()
  t.equal(s.isPaused(), false)
  g.drained()
  g.written()
  t.equal(s.isPaused(), false, 'late callbacks change nothing')
})
