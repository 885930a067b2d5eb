/**
 * SDP adjustments for browser players (media-stream-library) on the WebSocket path. Pure.
 *
 * media-stream-library builds the MP4 `esds` from `config=` of an mpeg4-generic fmtp with
 * `parseInt(config, 16)` written as a 16-bit field, so only a 2-byte AudioSpecificConfig works.
 * FFmpeg's AAC encoder (and so files it made, live555, gst-rtsp-server relaying them) gives a
 * 5-byte one: the 2-byte core plus an explicit "no SBR" extension (ISO 14496-3 §1.6.5:
 * syncExtensionType 0x2B7, extensionAudioObjectType 5, sbrPresentFlag 0). That extension states
 * what a decoder assumes anyway, so it is dropped; any other config is left as it is.
 */
import { editSdp } from './rewrite.js'

/** The 2-byte core of an AAC-LC AudioSpecificConfig whose only extension says "no SBR", else null. */
export function coreAacConfig (hex: string): string | null {
  if (!/^[0-9a-fA-F]{6,}$/.test(hex) || hex.length % 2 !== 0) return null
  const b = Buffer.from(hex, 'hex')
  const objectType = b[0]! >> 3
  const freqIndex = ((b[0]! & 7) << 1) | (b[1]! >> 7)
  if (objectType !== 2 || freqIndex === 15) return null
  // bits 16.. : syncExtensionType (11) = 0x2B7, extensionAudioObjectType (5) = 5 (SBR), sbrPresentFlag (1) = 0
  if (b.length < 3) return null
  const bits = b.readUIntBE(2, Math.min(3, b.length - 2)) << (8 * (3 - Math.min(3, b.length - 2)))
  const sync = bits >>> 13
  const ext = (bits >>> 8) & 0x1f
  const sbr = (bits >>> 7) & 1
  if (sync !== 0x2b7 || ext !== 5 || sbr !== 0) return null
  // Nothing else may follow but zero padding (no PS extension 0x548 with psPresentFlag set).
  const rest = bits & 0x7f
  if (rest !== 0 || b.subarray(5).some(x => x !== 0)) return null
  return b.subarray(0, 2).toString('hex')
}

/** SDP with every mpeg4-generic `config=` reduced to its 2-byte core where that is lossless. */
export function browserSdp (sdp: Buffer): Buffer {
  return editSdp(sdp, /^(a=fmtp:\d+ [^\r\n]*?\bconfig=)([0-9a-fA-F]+)/gim, m => {
    const core = coreAacConfig(m[2]!)
    return core === null ? m[0] : m[1]! + core
  })
}

const RTSP_RESPONSE = Buffer.from('RTSP/1.0 ')
const HEAD_END = Buffer.from('\r\n\r\n')

/**
 * One serialized RTSP message on its way to a browser client: when it is a response whose body is
 * an SDP (`Content-Type: application/sdp`), the same response with `browserSdp` applied to the body
 * and `Content-Length` set to the new length; any other message (a `$` frame run, a response
 * without SDP, an SDP with nothing to reduce) is returned as the same buffer. Every way a WebSocket
 * client is answered (proxied DESCRIBE replies and live fan-out viewers answered by the relay)
 * writes its responses one whole message at a time through WebSocketClient.write, which calls this.
 */
export function browserSdpMessage (msg: Buffer): Buffer {
  if (msg.length < RTSP_RESPONSE.length || msg[0] !== 0x52 ||
      !msg.subarray(0, RTSP_RESPONSE.length).equals(RTSP_RESPONSE)) { return msg }
  const end = msg.indexOf(HEAD_END)
  if (end < 0) return msg
  const head = msg.toString('latin1', 0, end)
  if (!/\r\ncontent-type:[ \t]*application\/sdp/i.test(head)) return msg
  const len = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)
  if (len === null) return msg
  const bodyStart = end + 4
  const bodyLength = Number(len[1])
  // Only a whole message (nothing after its body) is rewritten: the caller's contract.
  if (msg.length !== bodyStart + bodyLength) return msg
  const body = msg.subarray(bodyStart)
  const out = browserSdp(body)
  if (out === body) return msg
  const newHead = head.replace(/(\r\ncontent-length:[ \t]*)\d+/i, (_m, p: string) => p + String(out.length))
  return Buffer.concat([Buffer.from(newHead + '\r\n\r\n', 'latin1'), out])
}
