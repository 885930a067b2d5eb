// The two ends of a relayed POST leg (src/route/relayed-post.ts) wired through a stand-in for the
// worker's IPC channel: each message is JSON-serialized and delivered on a later turn, as Node's
// IPC delivers it. The portal's end holds a real accepted socket; the client is a real TCP socket.
import t from 'tap'
import net from 'node:net'
import {
  PostRelays,
  RelayedPost,
  isPostControl,
  isPostToWorker,
  type PostControl,
  type PostToWorker
} from '../../src/route/relayed-post.js'
import { patternBytes } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'
import type { TestContext } from '../helpers/gateway-harness.js'

interface Wired {
  client: net.Socket
  leg: RelayedPost
  relays: PostRelays
  /** Bytes the worker's end emitted as 'data', in order. */
  got: Buffer[]
  /** Control ops the portal received. */
  ops: string[]
  /** Bytes the client received from the gateway. */
  back: Buffer[]
  clientClosed: () => boolean
  legClosed: () => boolean
}

const head = {
  method: 'POST',
  target: '/live/cam1',
  version: 'HTTP/1.0',
  headers: [['x-sessioncookie', 'abc']],
  headLength: 0
} as never

/** A connected client socket and the portal's side of it, accepted paused (as the front door leaves it). */
async function acceptedPair (t: TestContext): Promise<{ client: net.Socket, socket: net.Socket }> {
  let accepted: net.Socket | null = null
  const server = net.createServer({ pauseOnConnect: true }, s => { accepted = s })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  client.on('error', () => {})
  t.teardown(() => { client.destroy() })
  return { client, socket: await waitFor(() => accepted, 'accepted') }
}

async function wire (t: TestContext, rest = Buffer.alloc(0)): Promise<Wired> {
  const { client, socket } = await acceptedPair(t)
  const back: Buffer[] = []
  let cClosed = false
  client.on('data', (b: Buffer) => back.push(b))
  client.on('close', () => { cClosed = true })
  const relays = new PostRelays()
  const ops: string[] = []
  const got: Buffer[] = []
  let leg: RelayedPost | null = null
  let lClosed = false
  // worker → portal
  const toPortal = (m: PostControl): void => {
    const copy = JSON.parse(JSON.stringify(m)) as unknown
    setImmediate(() => { if (isPostControl(copy)) { ops.push(copy.op); relays.control(copy) } })
  }
  // portal → worker
  const toWorker = (m: PostToWorker): boolean => {
    const copy = JSON.parse(JSON.stringify(m)) as unknown
    setImmediate(() => {
      if (!isPostToWorker(copy)) return
      if (copy.type === 'post') {
        leg = new RelayedPost(copy.id, toPortal, () => {})
        leg.on('data', (b: Buffer) => got.push(b))
        leg.on('error', () => {})
        leg.on('close', () => { lClosed = true })
        const initial = Buffer.from(copy.rest, 'latin1')
        if (initial.length > 0) got.push(initial)
      } else if (copy.type === 'post-data') leg?.deliver(Buffer.from(copy.data, 'latin1'))
      else leg?.clientClosed()
    })
    return true
  }
  relays.open(toWorker, socket, head, 'abc', rest, '127.0.0.1')
  const l = await waitFor(() => leg, 'the worker end')
  return { client, leg: l, relays, got, ops, back, clientClosed: () => cClosed, legClosed: () => lClosed }
}

t.test('client bytes reach the worker in order, every byte value intact, the early body first', async t => {
  const w = await wire(t, Buffer.from('early', 'latin1'))
  const all = Buffer.alloc(256 * 64)
  for (let i = 0; i < all.length; i++) all[i] = i & 0xff
  for (let o = 0; o < all.length; o += 1000) {
    w.client.write(all.subarray(o, o + 1000))
    await new Promise(resolve => setImmediate(resolve))
  }
  await waitFor(() => Buffer.concat(w.got).length === all.length + 5, 'all bytes', 5000)
  t.same(Buffer.concat(w.got), Buffer.concat([Buffer.from('early'), all]), 'same bytes, same order')
})

t.test('what the worker writes reaches the client; end() closes its side after the bytes', async t => {
  const w = await wire(t)
  w.leg.write('HTTP/1.1 100 Continue\r\n\r\n')
  await waitFor(() => Buffer.concat(w.back).toString().includes('100 Continue'), '100 Continue at the client')
  w.leg.end('HTTP/1.0 403 Forbidden\r\n\r\n')
  let ended = false
  w.client.on('end', () => { ended = true })
  await waitFor(() => ended, 'FIN at the client')
  t.equal(Buffer.concat(w.back).toString(), 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 403 Forbidden\r\n\r\n')
  t.same(w.ops, ['write', 'write', 'end'])
  w.client.end()
  await waitFor(() => w.legClosed(), 'the worker end closes once the client closed too')
  t.equal(w.relays.size, 0, 'the portal forgot the leg')
})

t.test('a paused worker end pauses the portal socket (TCP backpressure to the client) and resumes it', async t => {
  const w = await wire(t)
  w.leg.pause()
  const total = 4 * 1024 * 1024
  const data = patternBytes(total, 7)
  let written = false
  w.client.write(data, () => { written = true })
  await waitFor(() => w.ops.includes('pause'), 'pause sent to the portal', 5000)
  // The portal stopped reading: the client's write cannot complete while the worker is paused.
  await new Promise(resolve => setTimeout(resolve, 200))
  const held = Buffer.concat(w.got).length
  t.equal(held, 0, 'nothing emitted while paused')
  t.notOk(written, 'the client is held back by TCP')
  w.leg.resume()
  await waitFor(() => Buffer.concat(w.got).length === total, 'everything after resume', 10_000)
  t.ok(w.ops.includes('resume'), 'resume sent to the portal')
  t.same(Buffer.concat(w.got), data, 'same bytes, same order')
  await waitFor(() => written, 'the client write completed')
})

t.test('the client closing the POST ends the worker end after the bytes it sent', async t => {
  const w = await wire(t)
  let ended = false
  w.leg.on('end', () => { ended = true })
  w.client.end('last request')
  await waitFor(() => w.legClosed(), 'worker end closed', 5000)
  t.ok(ended, "'end' before 'close'")
  t.equal(Buffer.concat(w.got).toString(), 'last request')
  t.equal(w.relays.size, 0, 'the portal forgot the leg')
  t.same(w.ops, [], 'nothing sent back: the socket is gone')
})

t.test('the worker destroying the leg closes the client connection', async t => {
  const w = await wire(t)
  w.leg.destroy()
  await waitFor(() => w.clientClosed(), 'client connection closed', 5000)
  t.same(w.ops, ['destroy'])
  t.equal(w.relays.size, 0)
})

t.test('closeAll (the worker exited) closes every relayed connection', async t => {
  const a = await wire(t)
  a.relays.closeAll()
  await waitFor(() => a.clientClosed(), 'client connection closed', 5000)
  t.equal(a.relays.size, 0)
})

t.test('a channel that is closed closes the leg at once', async t => {
  const { client, socket } = await acceptedPair(t)
  let closed = false
  client.on('close', () => { closed = true })
  const relays = new PostRelays()
  relays.open(() => false, socket, head, 'abc', Buffer.alloc(0), '127.0.0.1')
  await waitFor(() => closed, 'client connection closed')
  t.equal(relays.size, 0)
})
