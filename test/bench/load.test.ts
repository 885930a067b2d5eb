/**
 * The load generator's GET parser (bench/src/load.ts): every tunnel's reads land in one shared
 * buffer, so whatever a read leaves unfinished (an HTTP head, an RTSP reply, a `$` frame) must be
 * copied before the next read, which may be another tunnel's, overwrites it. A scripted tunnel
 * server sends two tunnels' replies and stamped RTP cut at every kind of boundary, the two
 * interleaved read by read.
 */
import t from 'tap'
import net from 'node:net'
import { BenchTunnel, newStats } from '../../bench/src/load.js'
import { writeStamp } from '../../bench/src/stamp.js'

const FRAMES = 16

function frame (seq: number, size: number): Buffer {
  const f = Buffer.alloc(4 + size)
  f[0] = 0x24; f[1] = 0; f.writeUInt16BE(size, 2)
  f[4] = 0x90; f[5] = 96; f.writeUInt16BE(seq, 6)
  writeStamp(f, 4 + 12, process.hrtime.bigint())
  f.fill(seq & 0xff, 4 + 24)
  return f
}

/** Write `buf` in pieces of `cut` bytes, one per event-loop turn (so each is its own read). */
async function dribble (s: net.Socket, buf: Buffer, cut: number): Promise<void> {
  for (let o = 0; o < buf.length; o += cut) {
    s.write(buf.subarray(o, Math.min(buf.length, o + cut)))
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

t.test('two tunnels read through one shared buffer, every message and frame cut across reads', async t => {
  const gets = new Map<string, net.Socket>()
  const cuts = new Map<string, number>()
  // One write queue per GET: a reply never starts before the one ahead of it has left.
  const queues = new Map<string, Promise<void>>()
  const send = (cookie: string, buf: Buffer): void => {
    const before = queues.get(cookie) ?? Promise.resolve()
    queues.set(cookie, before.then(async () => { await dribble(gets.get(cookie)!, buf, cuts.get(cookie)!) }))
  }
  let nextCut = 7
  const server = net.createServer(sock => {
    let head = ''
    let body = ''
    sock.on('data', (d: Buffer) => {
      if (!head.includes('\r\n\r\n')) {
        head += d.toString('latin1')
        const i = head.indexOf('\r\n\r\n')
        if (i < 0) return
        const cookie = /x-sessioncookie: (\S+)/i.exec(head)![1]!
        if (head.startsWith('GET')) {
          gets.set(cookie, sock)
          cuts.set(cookie, nextCut)
          nextCut = 13
          send(cookie, Buffer.from(
            'HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\nCache-Control: no-store\r\n\r\n'
          ))
          return
        }
        body = head.slice(i + 4)
        head = head.slice(0, i + 4)
        ;(sock as net.Socket & { cookie?: string }).cookie = cookie
      } else body += d.toString('latin1')
      const cookie = (sock as net.Socket & { cookie?: string }).cookie!
      const text = Buffer.from(body, 'base64').toString('latin1')
      if (!text.endsWith('\r\n\r\n')) return
      body = ''
      const method = text.split(' ')[0]!
      const cseq = /CSeq: (\d+)/.exec(text)![1]!
      const sdp = method === 'DESCRIBE'
        ? 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP ' +
        '96\r\na=control:track0\r\n'
        : ''
      const reply =
        Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\nSession: 1234;timeout=60\r\n${sdp !== '' ? `Content-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n` : ''}\r\n${sdp}`)
      if (method !== 'PLAY') { send(cookie, reply); return }
      const frames = Array.from({ length: FRAMES }, (_, k) => frame(k, 40 + (k * 37) % 300))
      send(cookie, Buffer.concat([reply, ...frames]))
    })
    sock.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const stats = newStats()
  stats.recording = true
  const tunnels = [new BenchTunnel({ port, path: '/b/100', stats }), new BenchTunnel({ port, path: '/b/100', stats })]
  await Promise.all(tunnels.map(async x => { await x.open() }))
  const deadline = Date.now() + 20_000
  while (stats.packets < 2 * FRAMES && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(stats.packets, 2 * FRAMES, 'every frame of both tunnels counted')
  t.equal(stats.lost, 0, 'no sequence gap: no frame lost or misparsed across reads')
  t.equal(stats.errors, 0, 'no tunnel failed')
  t.equal(stats.delayCount, 2 * FRAMES, 'every frame\'s stamp read')
  t.ok(tunnels.every(x => x.setupNs > 0), 'setup timed to the first RTP byte on both')
  for (const x of tunnels) x.close()
  await new Promise<void>(resolve => server.close(() => resolve()))
})
