/**
 * The portal's router to remote relay nodes (src/route/remote-relays.ts) on its own, against relay
 * nodes of the test's own on loopback (each answers /healthz and records what is forwarded to it):
 * which node a leg goes to (HRW of its key, draining ones last), the signed preamble in front of the
 * leg's own bytes (checked with the relay side's verifier), the next node when one is unreachable,
 * the POST hand-shake, and the limits over the portal's own legs.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { createMetrics, type GatewayMetrics } from '../../../src/core/metrics.js'
import { ownerOf } from '../../../src/balancer/hrw.js'
import { ForwardSigner } from '../../../src/core/forward-signer.js'
import { ForwardTrust } from '../../../src/door/forward-trust.js'
import { parseHttpHead, type HttpHead } from '../../../src/tunnel/codec/http-head.js'
import type { ForwardClaims } from '../../../src/tunnel/codec/forward-proof.js'
import { RemoteRelays, type RemoteRelayOptions } from '../../../src/route/remote-relays.js'
import { waitFor } from '../../helpers/wait.js'

const LONG = 30_000
const SECRET = 'unit-test-cluster-secret-0123456789'

/** A connection a relay node got: the verified claims and the leg's bytes after the preamble. */
interface Arrival { claims: ForwardClaims | null, bytes: () => string, socket: net.Socket }

interface Node {
  id: string
  arrivals: Arrival[]
  /** POST hand-shakes answered 202 (the node "has" the GET) for these cookies; others get 421. */
  known: Set<string>
  close: () => void
}

/** A relay node of the test's own: /healthz 200 (draining when told), every other connection recorded. */
async function relayNode (t: Test, opts: { draining?: boolean } = {}): Promise<Node> {
  const trust = new ForwardTrust({ secrets: [SECRET], maxClockSkewMs: 60_000, maxNonces: 10_000 },
    createMetrics({ defaultMetrics: false }), pino({ level: 'silent' }))
  const arrivals: Arrival[] = []
  const known = new Set<string>()
  const sockets: net.Socket[] = []
  const server = net.createServer(socket => {
    sockets.push(socket)
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let arrival: Arrival | null = null
    let after = ''
    socket.on('data', (chunk: Buffer) => {
      if (arrival !== null) { after += chunk.toString('latin1'); return }
      buf = Buffer.concat([buf, chunk])
      if (buf.toString('latin1', 0, 12) === 'GET /healthz') {
        if (buf.indexOf('\r\n\r\n') === -1) return
        const body = JSON.stringify({ status: opts.draining === true ? 'draining' : 'ok', draining: opts.draining })
        socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
        return
      }
      const p = trust.takePreamble(buf, 'portal')
      if (p.state === 'incomplete') return
      const rest = p.state === 'signed' ? p.rest : buf
      after = rest.toString('latin1')
      arrival = { claims: p.state === 'signed' ? p.claims : null, bytes: () => after, socket }
      arrivals.push(arrival)
      if (/\r\nX-Tunnelgate-Pair: known-only\r\n/i.test(after)) {
        socket.write(known.has(arrival.claims?.cookie ?? '')
          ? 'HTTP/1.0 202 Accepted\r\n\r\n'
          : 'HTTP/1.0 421 Misdirected Request\r\nContent-Length: 0\r\n\r\n')
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const close = (): void => { for (const s of sockets) s.destroy(); server.close() }
  t.teardown(close)
  return { id: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, arrivals, known, close }
}

/** A port nothing listens on. */
async function deadPort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

interface Leg { socket: net.Socket, head: HttpHead | null, raw: Buffer }
interface Client { socket: net.Socket, got: () => string, closed: () => boolean }

/** A door of the test's own: reads each head and gives the leg paused, with every byte read. */
async function door (t: Test): Promise<(first: string) => Promise<{ client: Client, leg: Leg }>> {
  const ready: Leg[] = []
  const sockets: net.Socket[] = []
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
        ready.push({ socket, head: null, raw: buf })
        return
      }
      const r = parseHttpHead(buf)
      if (r.state !== 'ok') { socket.destroy(); return }
      ready.push({ socket, head: r.head, raw: buf })
    }
    socket.on('data', onData)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return async first => {
    const socket = net.connect(port, '127.0.0.1')
    sockets.push(socket)
    let got = ''
    let closed = false
    socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => { closed = true })
    await once(socket, 'connect')
    socket.write(first)
    const leg = await waitFor(() => ready.shift(), 'the door to read the head', LONG)
    return { client: { socket, got: () => got, closed: () => closed }, leg }
  }
}

async function portal (t: Test, nodes: string[], opts: Partial<RemoteRelayOptions> = {}):
Promise<{ relays: RemoteRelays, metrics: GatewayMetrics }> {
  const metrics = createMetrics({ defaultMetrics: false })
  const relays = new RemoteRelays({
    signer: new ForwardSigner(SECRET),
    relays: nodes,
    probeIntervalMs: 3_600_000,
    dnsIntervalMs: 3_600_000,
    connectTimeoutMs: 10_000,
    ...opts
  }, metrics, pino({ level: 'silent' }))
  t.teardown(() => relays.close())
  await relays.start()
  return { relays, metrics }
}

const getHead = (cookie: string, extra = ''): string =>
  `GET /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\n${extra}Accept: application/x-rtsp-tunnelled\r\n\r\n`
const postHead = (cookie: string): string =>
  `POST /live/cam1 HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\n` +
  'Content-Length: 32767\r\n\r\n'

const errors = async (m: GatewayMetrics, code: string): Promise<number> =>
  (await m.errorsTotal.get()).values.find(v => v.labels.code === code)?.value ?? 0

/** A cookie whose HRW owner among `ids` is `want`. */
function cookieFor (ids: string[], want: string): string {
  for (;;) {
    const c = randomBytes(12).toString('hex')
    if (ownerOf(c, ids.map(id => ({ id, weight: 1 }))) === want) return c
  }
}

t.test('a GET goes to its cookie\'s HRW node, behind a proof for that very leg, its own bytes unchanged', async t => {
  const a = await relayNode(t)
  const b = await relayNode(t)
  const ids = [a.id, b.id]
  const { relays } = await portal(t, ids)
  t.same(relays.relays().map(r => [r.id, r.up, r.draining]).sort(), ids.map(id => [id, true, false]).sort())
  const open = await door(t)
  for (const node of [a, b, b, a]) {
    const cookie = cookieFor(ids, node.id)
    const before = node.arrivals.length
    // A client's own X-Tunnelgate-* line is the portal's to write, never forwarded.
    const { leg } = await open(getHead(cookie, 'X-Tunnelgate-Pair: known-only\r\n'))
    relays.acceptGet(leg.socket, leg.head!, cookie, Buffer.alloc(0), { clientAddress: '10.7.0.1:5', raw: leg.raw })
    await waitFor(() => node.arrivals.length > before && node.arrivals.at(-1)!.bytes().length > 0,
      `the GET at ${node.id}`, LONG)
    const got = node.arrivals.at(-1)!
    t.match(got.claims, { kind: 'get', cookie, client: '10.7.0.1:5' }, 'the proof is for this GET')
    t.equal(got.bytes(), getHead(cookie), 'the head as the client sent it, without its X-Tunnelgate line')
  }
  t.equal(a.arrivals.length + b.arrivals.length, 4, 'each GET went to one node only')
  t.equal(relays.tunnels, 4)
  t.equal(relays.unpairedLegs, 4)
})

t.test('the splice carries bytes both ways; the client\'s close ends its count', async t => {
  const a = await relayNode(t)
  const { relays } = await portal(t, [a.id])
  const open = await door(t)
  const cookie = randomBytes(8).toString('hex')
  const { client, leg } = await open(getHead(cookie))
  relays.acceptGet(leg.socket, leg.head!, cookie, Buffer.alloc(0), { clientAddress: '10.8.0.1:1', raw: leg.raw })
  const up = await waitFor(() => a.arrivals[0], 'the GET at the node', LONG)
  up.socket.write('HTTP/1.0 200 OK\r\n\r\n')
  await waitFor(() => client.got() === 'HTTP/1.0 200 OK\r\n\r\n', 'the node\'s reply at the client', LONG)
  t.equal(relays.unpairedLegs, 1, 'a reply head alone does not pair the GET')
  up.socket.write('RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n')
  await waitFor(() => relays.unpairedLegs === 0, 'a byte after the reply head: paired through another portal', LONG)
  client.socket.write('$\x01\x00\x02hi')
  await waitFor(() => up.bytes().endsWith('$\x01\x00\x02hi'), 'upstream bytes at the node', LONG)
  t.equal(relays.tunnels, 1)
  client.socket.destroy()
  await waitFor(() => relays.tunnels === 0, 'the session count lowered at the client\'s close', LONG)
  await waitFor(() => up.socket.destroyed || up.socket.readableEnded, 'the node\'s connection closed', LONG)
  t.ok(relays.relays()[0]!.bytes > 0, 'the closed connection\'s bytes are kept')
})

t.test('an unreachable owner: the next node, and it is marked down; none left: the leg is closed', async t => {
  const b = await relayNode(t)
  const dead = `127.0.0.1:${await deadPort()}`
  const ids = [dead, b.id]
  const { relays, metrics } = await portal(t, ids)
  t.same(relays.relays().find(r => r.id === dead)?.up, false, 'the probe found it down')
  // The dead node is the cookie's owner: the leg goes to the next one.
  const open = await door(t)
  const cookie = cookieFor(ids, dead)
  const { leg } = await open(getHead(cookie))
  relays.acceptGet(leg.socket, leg.head!, cookie, Buffer.alloc(0), { clientAddress: '10.9.0.1:1', raw: leg.raw })
  await waitFor(() => b.arrivals.length === 1, 'the GET at the next node', LONG)

  b.close()
  const second = await open(getHead(cookieFor(ids, b.id)))
  relays.acceptRtsp(second.leg.socket, second.leg.raw, { clientAddress: '10.9.0.1:2' })
  await waitFor(() => second.client.closed(), 'the leg closed with no node left', LONG)
  t.equal(second.client.got(), '')
  t.equal(await errors(metrics, 'TG_ERR_RELAY_UNAVAILABLE'), 1)
  t.same(relays.relays().map(r => r.up), [false, false], 'both marked down')
})

t.test('draining nodes take no new tunnel; a POST follows its GET\'s node and skips the hand-shake', async t => {
  const a = await relayNode(t)
  const b = await relayNode(t, { draining: true })
  const ids = [a.id, b.id]
  const { relays } = await portal(t, ids)
  t.same(relays.relays().map(r => r.draining), [false, false], 'the operator drains nothing')
  const open = await door(t)
  const cookie = cookieFor(ids, b.id)
  const get = await open(getHead(cookie))
  relays.acceptGet(get.leg.socket, get.leg.head!, cookie, Buffer.alloc(0),
    { clientAddress: '10.10.0.1:1', raw: get.leg.raw })
  await waitFor(() => a.arrivals.length === 1, 'the GET at the node that does not drain', LONG)
  t.equal(b.arrivals.length, 0, 'its owner says it drains')
  const post = await open(postHead(cookie) + 'T1BUSU9OUw==')
  relays.acceptPost(post.leg.socket, post.leg.head!, cookie, Buffer.alloc(0),
    { clientAddress: '10.10.0.1:2', raw: post.leg.raw })
  await waitFor(() => a.arrivals.length === 2 && a.arrivals[1]!.bytes().endsWith('T1BUSU9OUw=='),
    'the POST at its GET\'s node', LONG)
  t.match(a.arrivals[1]!.claims, { kind: 'post', cookie }, 'straight, with a post proof (no hand-shake)')
  t.equal(relays.unpairedLegs, 0, 'it paired the GET')

  t.equal(relays.setDraining(a.id, true), true)
  t.equal(relays.setDraining('nowhere:1', true), false)
  t.same(relays.relays().map(r => r.draining), [true, false], 'the operator\'s drain, this portal only')
})

t.test('a POST with no GET here asks the nodes; the one that knows the cookie takes it', async t => {
  const a = await relayNode(t)
  const b = await relayNode(t)
  const ids = [a.id, b.id]
  const { relays } = await portal(t, ids)
  const open = await door(t)
  const cookie = cookieFor(ids, a.id)
  b.known.add(cookie)
  const post = await open(postHead(cookie) + 'QUJD')
  relays.acceptPost(post.leg.socket, post.leg.head!, cookie, Buffer.alloc(0),
    { clientAddress: '10.11.0.1:1', raw: post.leg.raw })
  t.equal(relays.unpairedLegs, 1, 'unpaired until a node says it holds the GET')
  await waitFor(() => b.arrivals.length === 1, 'the hand-shake at b', LONG)
  t.equal(a.arrivals.length, 1, 'the owner was asked first')
  t.match(a.arrivals[0]!.claims, { kind: 'post-ask', cookie })
  t.match(a.arrivals[0]!.bytes(), /^POST \/live\/cam1 HTTP\/1\.0\r\nX-Tunnelgate-Pair: known-only\r\n/)
  await waitFor(() => relays.unpairedLegs === 0, 'the 202: paired', LONG)
  post.client.socket.write('REVG')
  await waitFor(() => b.arrivals[0]!.bytes().endsWith('QUJDREVG'), 'the POST spliced to the node that knew it', LONG)
  t.equal(post.client.got(), '', 'the 202 is the portal\'s, never the client\'s')

  // Nobody knows it: it goes to the owner, unasked, which holds it.
  const other = cookieFor(ids, b.id)
  const lone = await open(postHead(other))
  relays.acceptPost(lone.leg.socket, lone.leg.head!, other, Buffer.alloc(0),
    { clientAddress: '10.11.0.1:2', raw: lone.leg.raw })
  await waitFor(() => b.arrivals.filter(x => x.claims?.kind === 'post').length === 1, 'the POST at its owner', LONG)
  t.equal(b.arrivals.length + a.arrivals.length, 5, 'b asked, a asked, then the POST itself at b')
  t.equal(relays.unpairedLegs, 1)
})

t.test('the portal\'s own limits: over one, the in-process relay\'s answer; nothing forwarded', async t => {
  const a = await relayNode(t)
  const limits = { maxTunnels: 0, maxTunnelsPerIp: 1, maxUnpairedLegs: 100, maxUnpairedLegsPerIp: 100 }
  const { relays, metrics } = await portal(t, [a.id], { limits })
  const open = await door(t)
  const first = await open(getHead('c1'))
  relays.acceptGet(first.leg.socket, first.leg.head!, 'c1', Buffer.alloc(0),
    { clientAddress: '10.12.0.1', raw: first.leg.raw })
  await waitFor(() => a.arrivals.length === 1, 'the first GET forwarded', LONG)
  const second = await open(getHead('c2'))
  relays.acceptGet(second.leg.socket, second.leg.head!, 'c2', Buffer.alloc(0),
    { clientAddress: '10.12.0.1', raw: second.leg.raw })
  await waitFor(() => second.client.closed(), 'the second GET refused', LONG)
  t.match(second.client.got(), /^HTTP\/1\.0 503 [^\r]*\r\n(?:[^\r]+\r\n)*Retry-After: 5\r\n/)
  const rtsp = await open('OPTIONS rtsp://gw/x RTSP/1.0\r\nCSeq: 1\r\n\r\n')
  relays.acceptRtsp(rtsp.leg.socket, rtsp.leg.raw, { clientAddress: '10.12.0.1' })
  await waitFor(() => rtsp.client.closed(), 'plain RTSP refused', LONG)
  t.match(rtsp.client.got(), /^RTSP\/1\.0 503 Service Unavailable\r\nRetry-After: 5\r\n/)
  t.equal(await errors(metrics, 'TG_ERR_TUN_IP_LIMIT'), 2)
  t.equal(a.arrivals.length, 1, 'nothing refused reached the node')
  relays.setLimits({ ...limits, maxTunnelsPerIp: 0 })
  const third = await open(getHead('c3'))
  relays.acceptGet(third.leg.socket, third.leg.head!, 'c3', Buffer.alloc(0),
    { clientAddress: '10.12.0.1', raw: third.leg.raw })
  await waitFor(() => a.arrivals.length === 2, 'a reloaded limit lets the next one in', LONG)
})
