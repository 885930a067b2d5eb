/**
 * The seed corpus: client→server bytes of the real tunnel legs in test/fixtures/captures (ffmpeg,
 * GStreamer and openRTSP), parsed into the message model: each GET's head and the bytes it sent
 * upstream after it (openRTSP's RTCP), each POST's head and its body decoded from base64 into RTSP
 * messages and `$` frames. Paths are pointed at the gateway's streams and Session ids replaced by
 * the session mark, so a mutated capture still plays as far as its mutations allow.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadTcpConnections } from '../helpers/pcap.js'
import { Base64StreamDecoder } from '../../src/tunnel/codec/base64-stream.js'
import { isMessage, parseStream, type StreamUnit, type TextMessage } from './message.js'
import { SESSION_MARK } from './plan.js'

export const CAPTURES = fileURLToPath(new URL('../fixtures/captures/', import.meta.url))

export interface CapturedPair {
  source: string
  getHead: TextMessage
  /** What the GET sent after its head (raw `$` RTCP for live555 clients). */
  getUpstream: Buffer
  postHead: TextMessage
  /** The POST body decoded: RTSP requests and `$` frames, in order. */
  postUnits: StreamUnit[]
}

/** Point a captured URL at `path` on the gateway (tracks renamed to the origin's trackID=N). */
function retarget (url: string, path: string): string {
  const m = /^(rtsp:\/\/[^/]+)\/(?:live|test\.mkv)(\/.*)?$/.exec(url)
  if (m === null) return url
  const track =
    m[2] === undefined
      ? ''
      : /(\d+)\/?$/.test(m[2])
        ? `/trackID=${Number(/(\d+)\/?$/.exec(m[2])![1]) + (m[2].includes('stream=') ? 1 : 0)}`
        : m[2]
  return `${m[1]}${path}${track}`
}

function adapt (u: StreamUnit, path: string): StreamUnit {
  if (!isMessage(u)) return u
  if (u.start[1] !== undefined) u.start[1] = retarget(u.start[1], path)
  for (const h of u.headers) if (h.name.toLowerCase() === 'session') h.value = h.value.replace(/^[^;]+/, SESSION_MARK)
  return u
}

function decodePost (body: Buffer): Buffer {
  return Buffer.from(new Base64StreamDecoder().push(body).data)
}

/** Every GET/POST pair in the captures, aimed at `path` (default /live/demo). */
export function loadCorpus (path = '/live/demo', dir = CAPTURES): CapturedPair[] {
  const pairs: CapturedPair[] = []
  for (const f of readdirSync(dir).filter(n => n.endsWith('.pcap')).sort()) {
    const legs = loadTcpConnections(join(dir, f)).map(c => c.clientToServer).filter(b => b.length > 0)
    const get = legs.find(b => b.toString('latin1', 0, 4) === 'GET ')
    const post = legs.find(b => b.toString('latin1', 0, 5) === 'POST ')
    if (get === undefined || post === undefined) continue
    const [getHead, ...getRest] = parseStream(get)
    const postEnd = post.indexOf('\r\n\r\n') + 4
    const [postHead] = parseStream(post.subarray(0, postEnd))
    if (getHead === undefined || !isMessage(getHead) || postHead === undefined || !isMessage(postHead)) continue
    getHead.start[1] = path
    postHead.start[1] = path
    pairs.push({
      source: f.replace(/\.pcap$/, ''),
      getHead,
      getUpstream: Buffer.concat(getRest.map(u => isMessage(u) ? Buffer.alloc(0) : u)),
      postHead,
      postUnits: parseStream(decodePost(post.subarray(postEnd))).map(u => adapt(u, path))
    })
  }
  return pairs
}
