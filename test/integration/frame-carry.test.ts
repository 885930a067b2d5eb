/**
 * Backend `$` frames cut anywhere by the backend's writes (a frame held from the last
 * read is completed from the head of the next read, and goes out with the whole frames after it
 * in one corked write): the client still gets every frame byte-identical and in order, with the
 * backend's replies in their place, through a tunnel GET and through a plain RTSP connection.
 */
import t, { type Test } from 'tap'
import type { RtspUnit } from '../../src/tunnel/codec/demux.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { ScriptedBackend, dssScript, frameStream, sendCut } from '../helpers/scripted-backend.js'
import { settled, startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, destroyAllClients, playPlainRtsp } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'

const backend = await ScriptedBackend.start(dssScript())
t.teardown(() => backend.close())
const gw = await startTestGateway(t, [backend])
t.afterEach(async () => { destroyAllClients(); await settled(gw, [backend]) })

/** A deterministic stream: frames of many sizes (0 to 65535-byte payloads) with two replies among them. */
function stream (): { bytes: Buffer, frames: Buffer[] } {
  return frameStream({
    count: 400,
    seed: 7,
    size: (i, rnd) => i % 97 === 0 ? 65535 : i % 13 === 0 ? 0 : 1 + rnd(3000),
    replyAfter: [150, 300],
    cseqBase: 900
  })
}

function check (tt: Test, units: RtspUnit[], frames: Buffer[]): void {
  const got = units.filter(u => u.kind === 'frame')
  tt.equal(got.length, frames.length, 'frame count')
  tt.ok(got.every((f, i) => f.raw.equals(frames[i]!)), 'every frame byte-identical, in order')
  tt.equal(units.filter(u => u.kind === 'error').length, 0, 'client stream never desynchronised')
  const replies = units.filter(u => u.kind === 'response').map(u => u.kind === 'response' ? getHeader(u, 'CSeq') : '')
  tt.same(replies.slice(-2), ['1050', '1200'], 'the replies among the frames delivered')
  const at = units.findIndex(u => u.kind === 'response' && getHeader(u, 'CSeq') === '1050')
  tt.equal(units.slice(0, at).filter(u => u.kind === 'frame').length, 151, 'the first reply right after frame 150')
}

t.test('tunnel GET: frames cut anywhere by backend writes arrive intact', async tt => {
  const tc = await TunnelClient.open(gw.port)
  await tc.play()
  const conn = backend.conns.at(-1)!
  const before = tc.get.units.length
  const { bytes, frames } = stream()
  await sendCut(conn, bytes, { seed: 3, pauseEvery: 4 })
  await waitFor(
    () => tc.get.units.slice(before).filter(u => u.kind === 'frame').length >= frames.length,
    'all frames at the client',
    10_000
  )
  check(tt, tc.get.units.slice(before), frames)
  tc.close()
})

t.test('plain RTSP client: the same', async tt => {
  const { socket: s, units } = await playPlainRtsp(gw.port)
  const conn = backend.conns.at(-1)!
  const before = units.length
  const { bytes, frames } = stream()
  await sendCut(conn, bytes, { seed: 3, pauseEvery: 4 })
  await waitFor(
    () => units.slice(before).filter(u => u.kind === 'frame').length >= frames.length,
    'all frames at the client',
    10_000
  )
  check(tt, units.slice(before), frames)
  s.destroy()
})
