/**
 * RTSP over WebSocket (RFC 6455): the upgrade request to the RTSP path (subprotocols `binary` and
 * `rtsp.onvif.org`, or others, or none; keys and versions right or wrong) and client frames:
 * masked or not, fragmented, pings, pongs, close frames with odd codes, reserved opcodes and RSV
 * bits, the three payload length forms (including a 64-bit length far past anything sent).
 */
import { createHash } from 'node:crypto'
import type { Rng } from '../prng.js'
import { header, message, type TextMessage } from '../message.js'
import { oddValue } from './lexicon.js'
import { requestStart, roughen } from './http.js'

export const WS_PATH = '/rtsp-over-websocket'

export function upgradeHead (rng: Rng): TextMessage {
  const key = rng.weighted<() => string>([
    [90, () => rng.bytes(16).toString('base64')],
    [5, () => rng.bytes(rng.int(1, 30)).toString('base64')],
    [5, () => oddValue(rng)]
  ])()
  const hs = [
    header('Host', '127.0.0.1'),
    header('Upgrade', rng.weighted([[90, 'websocket'], [4, 'WebSocket'], [3, 'websocket, h2c'], [3, 'h2c']])),
    header('Connection', rng.weighted([[85, 'Upgrade'], [10, 'keep-alive, Upgrade'], [5, 'close']])),
    header('Sec-WebSocket-Key', key),
    header('Sec-WebSocket-Version', rng.weighted([[92, '13'], [4, '8'], [4, '']]))
  ]
  if (rng.chance(0.9)) {
    hs.push(
      header(
        'Sec-WebSocket-Protocol',
        rng.weighted([
          [45, 'binary'],
          [30, 'rtsp.onvif.org'],
          [10, 'binary, rtsp.onvif.org'],
          [10, 'chat'],
          [5, '']
        ])
      )
    )
  }
  if (rng.chance(0.1)) hs.push(header('Sec-WebSocket-Extensions', 'permessage-deflate'))
  if (rng.chance(0.05)) hs.splice(rng.int(0, hs.length - 1), 1)
  const m = message([], rng.shuffle(hs))
  const path = rng.weighted([[90, WS_PATH], [4, `${WS_PATH}?token=x`], [3, `${WS_PATH}/`], [3, WS_PATH.toUpperCase()]])
  Object.assign(m, requestStart(rng, 'GET', path))
  if (m.start[1] !== path && rng.chance(0.8)) m.start[1] = path
  return roughen(m, rng)
}

export interface WsFrame {
  fin: boolean
  rsv: number
  opcode: number
  masked: boolean
  payload: Buffer
  lengthForm?: 'min' | '16' | '64'
  declared?: bigint
}

export function encodeFrame (f: WsFrame): Buffer {
  const len = f.payload.length
  const form = f.lengthForm ?? (len < 126 ? 'min' : len < 65536 ? '16' : '64')
  const b0 = (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f)
  const mask = f.masked ? 0x80 : 0
  let head: Buffer
  if (form === 'min') head = Buffer.from([b0, mask | Math.min(len, 125)])
  else if (form === '16') {
    head = Buffer.alloc(4)
    head[0] = b0
    head[1] = mask | 126
    head.writeUInt16BE(Math.min(len, 65535), 2)
  } else {
    head = Buffer.alloc(10)
    head[0] = b0
    head[1] = mask | 127
    head.writeBigUInt64BE(f.declared ?? BigInt(len), 2)
  }
  if (!f.masked) return Buffer.concat([head, f.payload])
  const key = createHash('sha1').update(f.payload).digest().subarray(0, 4)
  const body = Buffer.from(f.payload)
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!
  return Buffer.concat([head, key, body])
}

/** Frames carrying `data` (the RTSP-over-TCP byte stream), with control frames and faults mixed in. */
export function framesFor (rng: Rng, data: Buffer): Buffer[] {
  const out: Buffer[] = []
  const masked = (): boolean => rng.chance(0.95)
  let off = 0
  let first = true
  while (off < data.length) {
    const frag = rng.chance(0.2)
    const n = frag ? rng.int(1, Math.max(1, data.length - off)) : data.length - off
    const last = off + n >= data.length
    out.push(
      encodeFrame({
        fin: !frag || last,
        rsv: rng.chance(0.02) ? rng.int(1, 7) : 0,
        opcode: first
          ? rng.weighted([
            [85, 2],
            [12, 1],
            [3, 0]
          ])
          : 0,
        masked: masked(),
        payload: data.subarray(off, off + n)
      })
    )
    if (frag && !last && rng.chance(0.2)) {
      out.push(encodeFrame({ fin: true, rsv: 0, opcode: 9, masked: masked(), payload: rng.bytes(rng.int(0, 10)) }))
    }
    first = !frag || last
    off += n
  }
  for (let extra = rng.small(0, 3); extra > 0; extra--) out.splice(rng.int(0, out.length), 0, oddFrame(rng))
  if (rng.chance(0.3)) {
    out.push(encodeFrame({ fin: true, rsv: 0, opcode: 8, masked: masked(), payload: closePayload(rng) }))
  }
  return out
}

function closePayload (rng: Rng): Buffer {
  return rng.weighted<() => Buffer>([
    [50, () => Buffer.from([0x03, 0xe8])],
    [20, () => Buffer.alloc(0)],
    [10, () => Buffer.from([rng.int(0, 255)])],
    [
      10,
      () => {
        const b = Buffer.alloc(2)
        b.writeUInt16BE(rng.pick([0, 999, 1004, 1005, 1006, 1015, 2999, 4999, 65535]), 0)
        return b
      }
    ],
    [10, () => Buffer.concat([Buffer.from([0x03, 0xe8]), rng.bytes(rng.int(1, 130))])]
  ])()
}

function oddFrame (rng: Rng): Buffer {
  return rng.weighted<() => Buffer>([
    [
      30,
      () =>
        encodeFrame({ fin: true, rsv: 0, opcode: 9, masked: true, payload: rng.bytes(rng.pick([0, 5, 125, 126, 200])) })
    ],
    [15, () => encodeFrame({ fin: true, rsv: 0, opcode: 10, masked: true, payload: rng.bytes(rng.int(0, 20)) })],
    [
      15,
      () =>
        encodeFrame({
          fin: rng.chance(0.5),
          rsv: 0,
          opcode: rng.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]),
          masked: true,
          payload: rng.bytes(rng.int(0, 40))
        })
    ],
    [10, () => encodeFrame({ fin: false, rsv: 0, opcode: 9, masked: true, payload: rng.bytes(3) })],
    [10, () => encodeFrame({ fin: true, rsv: 0, opcode: 2, masked: false, payload: rng.bytes(rng.int(0, 40)) })],
    [
      10,
      () =>
        encodeFrame({
          fin: true,
          rsv: 0,
          opcode: 2,
          masked: true,
          payload: rng.bytes(rng.int(0, 20)),
          lengthForm: '64',
          declared: rng.pick([2n ** 63n - 1n, 2n ** 64n - 1n, 300000n, 262145n])
        })
    ],
    [10, () => encodeFrame({ fin: true, rsv: 0, opcode: 0, masked: true, payload: rng.bytes(rng.int(0, 20)) })]
  ])()
}
