/**
 * The RFC 6455 codec (src/tunnel/codec/websocket-frame.ts): handshake checks and the 101 reply
 * (RFC 6455 §1.3 sample key), frame decoding split anywhere and fragmented anyhow (fast-check),
 * every protocol violation refused with its close code, the message size limit from the header,
 * and interop with the `ws` package's own frame encoder (Sender) and decoder (Receiver).
 */
import t from 'tap'
import fc from 'fast-check'
import * as wsModule from 'ws'
import {
  acceptKey, checkHandshake, closePayload, encodeFrame, frameHeader, isWebSocketUpgrade, targetPath, targetQuery,
  WsFrameDecoder,
  OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, type WsEvent
} from '../../../../src/tunnel/codec/websocket-frame.js'
import type { HttpHead } from '../../../../src/tunnel/codec/http-head.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const head = (headers: Array<[string, string]>, o: Partial<HttpHead> = {}): HttpHead =>
  ({ method: 'GET', target: '/rtsp-over-websocket', version: 'HTTP/1.1', headers, headLength: 0, ...o })
const good: Array<[string,
  string]> = [['Host', 'gw'], ['Upgrade', 'websocket'], ['Connection', 'keep-alive, Upgrade'],
  ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', KEY]]

t.test('handshake: RFC 6455 §1.3 sample key, subprotocol echo, refusals', async t => {
  t.equal(acceptKey(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'Sec-WebSocket-Accept of the RFC sample')
  const ok = checkHandshake(head([...good, ['Sec-WebSocket-Protocol', 'binary']]))
  t.ok(ok.ok)
  if (ok.ok) {
    t.equal(ok.protocol, 'binary')
    t.equal(ok.reply.toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: binary\r\n\r\n',
      '101 reply with the echoed subprotocol')
  }
  const onvif = checkHandshake(head([...good, ['Sec-WebSocket-Protocol', 'foo, rtsp.onvif.org, binary']]))
  t.equal(onvif.ok && onvif.protocol, 'rtsp.onvif.org', "the client's first supported subprotocol is chosen")
  const none = checkHandshake(head(good))
  t.ok(none.ok && none.protocol === null && !none.reply.toString().includes('Sec-WebSocket-Protocol'),
    'no subprotocol offered: none echoed')
  const cases: Array<[string, HttpHead, number]> = [
    ['POST', head(good, { method: 'POST' }), 405],
    ['HTTP/1.0', head(good, { version: 'HTTP/1.0' }), 400],
    ['no Upgrade', head(good.filter(([k]) => k !== 'Upgrade')), 400],
    ['no Connection: Upgrade',
      head(good.map(([k, v]) => [k, k === 'Connection' ? 'keep-alive' : v] as [string, string])), 400],
    ['version 8', head(good.map(([k, v]) => [k, k === 'Sec-WebSocket-Version' ? '8' : v] as [string, string])), 426],
    ['short key', head(good.map(([k, v]) => [k, k === 'Sec-WebSocket-Key' ? 'abc' : v] as [string, string])), 400],
    ['unsupported subprotocol', head([...good, ['Sec-WebSocket-Protocol', 'chat, superchat']]), 400]
  ]
  for (const [name, h, status] of cases) {
    const r = checkHandshake(h)
    t.ok(!r.ok && r.status === status && r.code === 'TG_ERR_WS_HANDSHAKE', `${name} → ${status} TG_ERR_WS_HANDSHAKE`)
  }
  const v8 = checkHandshake(cases[4]![1])
  t.same(!v8.ok && v8.headers, [['Sec-WebSocket-Version', '13']], '426 names the supported version')
  t.ok(isWebSocketUpgrade(head([['Upgrade', 'WebSocket']])), 'Upgrade token is case-insensitive')
  t.notOk(isWebSocketUpgrade(head([['Upgrade', 'h2c']])))
  t.equal(targetPath('/rtsp-over-websocket?token=a.b'), '/rtsp-over-websocket')
  t.equal(targetPath('http://gw:80/rtsp-over-websocket'), '/rtsp-over-websocket')
  t.same([...targetQuery('/x?token=a%2Eb&x&token=2')], [['token', 'a.b'], ['x', '']])
})

// @types/ws does not declare the frame-level classes the package exports.
const { Sender, Receiver } = wsModule as unknown as {
  Sender: new (socket: unknown) => { send (data: Buffer, o: object, cb: () => void): void }
  Receiver: new (o: object) => { write (b: Buffer): boolean, on (ev: 'message', cb: (d: Buffer) => void): void }
}
const mask = Buffer.from([0x11, 0x22, 0x33, 0x44])
const messages = (evs: WsEvent[]): string[] =>
  evs.filter(e => e.kind === 'message').map(e => (e as { data: Buffer }).data.toString('hex'))

t.test('decoder: messages fragmented and split anywhere come out whole (fast-check)', async t => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.uint8Array({ maxLength: 70_000 }).map(a => Buffer.from(a)), fc.integer({ min: 1, max: 4 }),
      fc.boolean()),
    { minLength: 1, maxLength: 5 }),
    fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }),
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map(a => Buffer.from(a)),
    (msgs, cuts, key) => {
      const wire: Buffer[] = []
      for (const [payload, parts, ping] of msgs) {
        const size = Math.ceil(payload.length / parts) || 1
        for (let i = 0, first = true; first || i < payload.length; i += size, first = false) {
          const last = i + size >= payload.length
          wire.push(encodeFrame(first ? OP_BINARY : OP_CONTINUATION, payload.subarray(i, i + size), {
            fin: last,
            mask: key
          }))
          // Control frames may sit between the fragments of a message (§5.4).
          if (ping && !last) wire.push(encodeFrame(OP_PING, Buffer.from('p'), { mask: key }))
        }
      }
      const all = Buffer.concat(wire)
      const d = new WsFrameDecoder({ maxMessageBytes: 1 << 20 })
      const out: WsEvent[] = []
      let at = 0
      for (let i = 0; at < all.length; i++) {
        const n = cuts[i % cuts.length]!
        out.push(...d.push(all.subarray(at, at + n)))
        at += n
      }
      if (out.some(e => e.kind === 'error')) return false
      return JSON.stringify(messages(out)) === JSON.stringify(msgs.map(m => m[0].toString('hex'))) && d.buffered === 0
    }), { numRuns: 150 })
  t.pass('150 random message sets, fragmentations and splits decoded whole')
})

t.test('decoder: protocol violations are refused with the right close code', async t => {
  const one = (bytes: Buffer, opts = {}): WsEvent => {
    const evs = new WsFrameDecoder({ maxMessageBytes: 1000, ...opts }).push(bytes)
    return evs[evs.length - 1]!
  }
  const cases: Array<[string, Buffer, number, string?]> = [
    ['unmasked client frame', encodeFrame(OP_BINARY, Buffer.from('x')), 1002],
    ['reserved bit', Buffer.from([0xc2, 0x80, 1, 2, 3, 4]), 1002],
    ['unknown opcode 3', encodeFrame(3, Buffer.alloc(0), { mask }), 1002],
    ['fragmented ping', encodeFrame(OP_PING, Buffer.alloc(1), { fin: false, mask }), 1002],
    ['126-byte ping', encodeFrame(OP_PING, Buffer.alloc(126), { mask }), 1002],
    ['continuation first', encodeFrame(OP_CONTINUATION, Buffer.alloc(1), { mask }), 1002],
    ['new message inside a message',
      Buffer.concat([encodeFrame(OP_BINARY, Buffer.alloc(1), { fin: false, mask }),
        encodeFrame(OP_TEXT, Buffer.alloc(1), { mask })]),
      1002],
    ['bad close code 1005', encodeFrame(OP_CLOSE, closePayload(1005), { mask }), 1002],
    ['1-byte close', encodeFrame(OP_CLOSE, Buffer.alloc(1), { mask }), 1002],
    ['non-minimal 16-bit length', Buffer.concat([Buffer.from([0x82, 0xfe, 0, 5]), mask, Buffer.alloc(5)]), 1002],
    ['message over the limit (from its header)', frameHeader(OP_BINARY, 1001, { mask }), 1009, 'TG_ERR_WS_TOO_LARGE'],
    ['fragments over the limit',
      Buffer.concat([encodeFrame(OP_BINARY, Buffer.alloc(600), { fin: false, mask }),
        frameHeader(OP_CONTINUATION, 401, { mask })]),
      1009, 'TG_ERR_WS_TOO_LARGE'],
    ['2^63 length', Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]), 1009, 'TG_ERR_WS_TOO_LARGE']
  ]
  for (const [name, bytes, code, err] of cases) {
    const e = one(bytes)
    t.ok(e.kind === 'error' && e.closeCode === code && e.code === (err ?? 'TG_ERR_WS_PROTOCOL'), `${name} → ${code}`)
  }
  const d = new WsFrameDecoder()
  t.same(d.push(encodeFrame(OP_CLOSE, closePayload(1000, 'bye'), { mask })),
    [{ kind: 'close', code: 1000, reason: 'bye' }], 'close frame')
  t.same(d.push(encodeFrame(OP_BINARY, Buffer.from('x'), { mask })), [], 'nothing after close')
  const p = new WsFrameDecoder().push(Buffer.concat([encodeFrame(OP_PING, Buffer.from('hi'), { mask }),
    encodeFrame(OP_PONG, Buffer.from('yo'), { mask })]))
  t.same(p.map(e => [e.kind, (e as { data: Buffer }).data.toString()]), [['ping', 'hi'], ['pong', 'yo']])
  const s = new WsFrameDecoder({ requireMask: false }).push(encodeFrame(OP_TEXT, Buffer.from('RTSP')))
  t.same(s, [{ kind: 'message', binary: false, data: Buffer.from('RTSP') }],
    'a client-side decoder reads unmasked server frames')
})

t.test('interop with the ws package: its Sender frames decode, our frames pass its Receiver', async t => {
  // ws's Sender masks client frames with a random key, as a browser does.
  const chunks: Buffer[] = []
  const fake = {
    write: (b: Buffer, cb?: () => void) => {
      chunks.push(Buffer.from(b))
      if (typeof cb === 'function') queueMicrotask(cb)
      return true
    },
    cork () {},
    uncork () {}
  }
  const sender = new Sender(fake as never)
  const payloads = [Buffer.alloc(0), Buffer.from('OPTIONS rtsp://gw/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n'),
    Buffer.alloc(200), Buffer.alloc(70_000, 7)]
  for (const p of payloads) {
    const options = { binary: true, mask: true, fin: true, compress: false }
    await new Promise<void>(resolve => sender.send(p, options, () => resolve()))
  }
  const d = new WsFrameDecoder({ maxMessageBytes: 1 << 20 })
  const got = messages(d.push(Buffer.concat(chunks)))
  t.same(got, payloads.map(p => p.toString('hex')), "ws's masked frames decode to the same messages")

  const receiver = new Receiver({ isServer: false, maxPayload: 1 << 20 })
  const received: Buffer[] = []
  receiver.on('message', (data: Buffer) => received.push(Buffer.from(data)))
  for (const p of payloads) receiver.write(encodeFrame(OP_BINARY, p))
  t.same(received.map(b => b.toString('hex')), payloads.map(p => p.toString('hex')),
    "ws's client Receiver reads our server frames")
})
