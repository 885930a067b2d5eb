/**
 * The output budget of one client connection (src/session/socket-output.ts) on real loopback sockets.
 * Bytes written before the connection opens stay queued (writableLength), so the budgets are checked
 * against exact figures; the open connection's drain and close give them back to the ledger.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { OutputLedger, SocketOutput } from '../../../src/session/socket-output.js'

const HWM = new net.Socket().writableHighWaterMark

async function listen (t: Test): Promise<number> {
  const server = net.createServer(s => { s.resume() })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return (server.address() as net.AddressInfo).port
}

/** A socket still connecting: what is written to it stays queued until 'connect'. */
function connecting (t: Test, port: number): net.Socket {
  const s = net.connect(port, '127.0.0.1')
  t.teardown(() => { s.destroy() })
  return s
}

function output (s: net.Socket, limit: number, ledger: OutputLedger | null = null): {
  out: SocketOutput, reasons: string[]
} {
  const out = new SocketOutput(s, limit, ledger)
  const reasons: string[] = []
  out.onOverflow(r => { reasons.push(r) })
  return { out, reasons }
}

t.test('a write past the budget on a non-empty queue is dropped, its callback still runs, the owner told once',
  async t => {
    const { out, reasons } = output(connecting(t, await listen(t)), 1000)
    t.equal(out.write(Buffer.alloc(600)), true)
    t.equal(out.queued, 600)
    t.equal(out.write('x'.repeat(400)), true, 'exactly at the budget is taken')
    t.equal(out.queued, 1000)
    t.same(reasons, [])
    let done = 0
    t.equal(out.write(Buffer.alloc(1), () => { done++ }), true, 'a refused write reports no backpressure')
    t.equal(done, 1, 'its callback ran')
    t.equal(out.queued, 1000, 'nothing was queued')
    t.equal(out.exceeded, true)
    t.same(reasons, ['1001 bytes would be queued towards the client (limits.clientOutputBytes 1000)'])
    out.write(Buffer.alloc(1))
    out.writeBoth(Buffer.alloc(1), Buffer.alloc(1), () => { done++ })
    t.equal(done, 2, 'writeBoth refused: its callback ran too')
    t.equal(reasons.length, 1, 'told once')
    t.equal(out.queued, 1000, 'every later write is dropped')
  })

t.test('an empty queue takes one write of any size; one the kernel did not take past the budget ends it',
  async t => {
    const port = await listen(t)
    const open = connecting(t, port)
    await once(open, 'connect')
    const a = output(open, 100)
    a.out.write(Buffer.alloc(4000))
    t.equal(a.out.exceeded, false, 'the kernel took it: nothing queued')
    t.same(a.reasons, [])
    const b = output(connecting(t, port), 100)
    b.out.write(Buffer.alloc(4000))
    t.equal(b.out.queued, 4000, 'the write was taken')
    t.equal(b.out.exceeded, true)
    t.same(b.reasons, ['4000 bytes queued towards the client (limits.clientOutputBytes 100)'])
  })

t.test('writeBoth: both buffers in order, counted as one write', async t => {
  const got: Buffer[] = []
  const server = net.createServer(s => { s.on('data', (c: Buffer) => got.push(c)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const s = connecting(t, (server.address() as net.AddressInfo).port)
  const { out, reasons } = output(s, 10)
  out.write(Buffer.from('ab'))
  t.equal(out.writeBoth(Buffer.from('cdef'), Buffer.from('ghij')), true)
  t.same(reasons, [], '2 + 8 bytes: at the budget')
  out.writeBoth(Buffer.from('k'), Buffer.from('l'))
  t.equal(out.exceeded, true, 'the pair as one write passes it')
  t.match(reasons[0], /^12 bytes would be queued/)
  await once(s, 'connect')
  while (Buffer.concat(got).length < 10) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(Buffer.concat(got).toString(), 'abcdefghij')
})

t.test('the ledger bounds the sum queued past the high-water marks; drain and close give it back', async t => {
  const port = await listen(t)
  const ledger = new OutputLedger(HWM + 10_000)
  const sa = connecting(t, port)
  const a = output(sa, 1 << 20, ledger)
  const b = output(connecting(t, port), 1 << 20, ledger)
  t.equal(a.out.write(Buffer.alloc(HWM + 1000)), false, 'past the high-water mark')
  t.equal(ledger.total, HWM + 1000, 'counted in the ledger')
  t.equal(b.out.write(Buffer.alloc(100)), true)
  t.equal(ledger.total, HWM + 1000, 'under the high-water mark: not counted')
  b.out.write(Buffer.alloc(8900))
  t.same(b.reasons, [], 'the sum (the ledger, what b queued, the write) is at the limit')
  b.out.write(Buffer.alloc(1))
  t.equal(b.out.exceeded, true)
  t.match(b.reasons[0], /would pass limits\.clientOutputBytesTotal \(\d+\) while this client has 9000 bytes unread/)
  t.same(a.reasons, [], 'the other connection is not told')
  a.out.write(Buffer.alloc(500))
  t.same(a.reasons, [], 'its own bytes are not counted twice')
  t.equal(ledger.total, HWM + 1500)
  await once(sa, 'drain')
  t.equal(ledger.total, 0, 'drained: nothing counted')
})

t.test('a connection that closes with bytes counted gives them back', async t => {
  const ledger = new OutputLedger(0)
  const s = connecting(t, await listen(t))
  const { out, reasons } = output(s, 1 << 20, ledger)
  out.write(Buffer.alloc(HWM * 3))
  t.equal(ledger.total, HWM * 3)
  out.write(Buffer.alloc(HWM * 3))
  t.same(reasons, [], 'limit 0: no process-wide bound')
  t.equal(ledger.total, HWM * 6)
  s.destroy()
  await once(s, 'close')
  t.equal(ledger.total, 0)
  out.release()
  t.equal(ledger.total, 0, 'release is idempotent')
})

t.test('a destroyed socket takes nothing', async t => {
  const s = connecting(t, await listen(t))
  const { out, reasons } = output(s, 100)
  s.destroy()
  let done = false
  out.write(Buffer.alloc(1), () => { done = true })
  t.equal(done, true)
  t.same(reasons, [], 'not an overflow')
  t.equal(out.exceeded, false)
})
