/**
 * refuseConnection (src/tunnel/refuse.ts) on real sockets: the reply arrives, the client's later
 * bytes do not keep the gateway's socket (it is read past and closed), and a client that never
 * closes is destroyed after the grace time.
 */
import t from 'tap'
import net from 'node:net'
import { refuseConnection } from '../../../src/tunnel/refuse.js'

async function pair (allowHalfOpen = false): Promise<{
  server: net.Server,
  accepted: Promise<net.Socket>,
  client: net.Socket
}> {
  let take!: (s: net.Socket) => void
  const accepted = new Promise<net.Socket>(resolve => { take = resolve })
  // As the front door leaves a socket once its head is read: it was flowing, then paused.
  const server = net.createServer(s => {
    const d = (): void => {}
    s.on('data', d); s.removeListener('data', d); s.pause(); take(s)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen })
  await new Promise(resolve => client.once('connect', resolve))
  return { server, accepted, client }
}

t.test('a paused socket refused, then sent more bytes, still closes when the client does', async t => {
  const { server, accepted, client } = await pair()
  t.teardown(() => server.close())
  const s = await accepted
  let reply = ''
  client.on('data', d => { reply += String(d); client.write('more bytes after the refusal') })
  client.on('end', () => client.end())
  refuseConnection(s, 'HTTP/1.0 400 Bad Request\r\n\r\n', 10_000)
  await new Promise(resolve => s.once('close', resolve))
  t.match(reply, /^HTTP\/1\.0 400 /, 'the reply reached the client')
  t.ok(s.destroyed, 'closed long before the grace time: the FIN was read')
})

t.test('a client that never closes is destroyed after the grace time', async t => {
  const { server, accepted, client } = await pair(true)
  t.teardown(() => server.close())
  client.on('data', () => {}) // reads, but never ends its side (half open)
  const s = await accepted
  const start = Date.now()
  refuseConnection(s, 'RTSP/1.0 403 Forbidden\r\n\r\n', 200)
  await new Promise(resolve => s.once('close', resolve))
  t.ok(Date.now() - start >= 150, 'destroyed at the grace time')
  client.destroy()
})
