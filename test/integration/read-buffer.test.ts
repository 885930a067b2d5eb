/**
 * backend.readBufferBytes: a session reads its backend into one buffer of its own and
 * writes `$` frames to the client straight from it. A client that stops reading makes those writes
 * queue; the buffer must then not be read into again until they have left (else the client would
 * get bytes of later reads in place of earlier ones). Here clients stop reading while the backend
 * sends megabytes of frames cut at random, then read again: every frame must arrive intact and in
 * order, with the backend's replies in their place, for a buffer of 1 KiB (reads end mid-frame
 * all the time), the default (16 KiB) and 0 (a fresh buffer per read, Node's default); directly
 * and through a portal and a relay node (the portal's RelayReads).
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import type { RtspUnit } from '../../src/tunnel/codec/demux.js'
import { getHeader } from '../../src/tunnel/codec/rtsp-message.js'
import { ScriptedBackend, dssScript, frameStream, sendCut, type BackendConn } from '../helpers/scripted-backend.js'
import { metric, settled, startTestGateway } from '../helpers/gateway-harness.js'
import { TunnelClient, destroyAllClients, playPlainRtsp } from '../helpers/tunnel-client.js'
import { pause, waitFor } from '../helpers/wait.js'

const FRAMES = 6000

/**
 * ≈24 MB of frames (up to 8000-byte payloads, some empty), two replies among them: more than loopback TCP buffers
 * take in while the client does not read.
 */
function stream (): { bytes: Buffer, frames: Buffer[] } {
  return frameStream({
    count: FRAMES,
    seed: 11,
    size: (i, rnd) => i % 17 === 0 ? 0 : 1 + rnd(8000),
    replyAfter: [1000, 2000],
    cseqBase: 9000
  })
}

function check (tt: Test, units: RtspUnit[], frames: Buffer[]): void {
  const got = units.filter(u => u.kind === 'frame')
  tt.equal(got.length, frames.length, 'frame count')
  const bad = got.findIndex((f, i) => !f.raw.equals(frames[i]!))
  tt.equal(bad, -1, 'every frame byte-identical, in order')
  tt.equal(units.filter(u => u.kind === 'error').length, 0, 'client stream never desynchronised')
  const at = units.findIndex(u => u.kind === 'response' && getHeader(u, 'CSeq') === '10000')
  tt.equal(units.slice(0, at).filter(u => u.kind === 'frame').length, 1001, 'the first reply right after frame 1000')
  const at2 = units.findIndex(u => u.kind === 'response' && getHeader(u, 'CSeq') === '11000')
  tt.equal(units.slice(0, at2).filter(u => u.kind === 'frame').length, 2001, 'the second reply right after frame 2000')
}

/** The backend's queue grows while the client does not read: the gateway stopped reading the backend. */
async function backendBlocked (conn: BackendConn): Promise<void> {
  await waitFor(
    () => conn.socket.writableLength > 0 ? true : undefined,
    "the backend's writes queue up (gateway not reading)",
    10_000
  )
}

/**
 * The client stops reading while the backend sends stream(); once the backend blocks it reads again and gets it
 * all.
 */
async function stallThenRead (
  tt: Test,
  conn: BackendConn,
  client: net.Socket,
  units: RtspUnit[],
  timeoutMs = 20_000
): Promise<void> {
  const before = units.length
  client.pause()
  const { bytes, frames } = stream()
  void sendCut(conn, bytes, { seed: 5 })
  await backendBlocked(conn)
  await pause(200)
  client.resume()
  await waitFor(
    () => units.slice(before).filter(u => u.kind === 'frame').length >= frames.length ? true : undefined,
    'all frames at the client',
    timeoutMs
  )
  check(tt, units.slice(before), frames)
}

for (const [label, readBufferBytes] of [
  ['1 KiB', 1024],
  ['default (16 KiB)', undefined],
  ['0 (a buffer per read)', 0]
] as const) {
  t.test(`backend.readBufferBytes ${label}`, async t => {
    const backend = await ScriptedBackend.start(dssScript())
    t.teardown(() => backend.close())
    const layer = readBufferBytes === undefined ? {} : { backend: { readBufferBytes } }
    const gw = await startTestGateway(t, [backend], layer)
    t.afterEach(async () => {
      destroyAllClients()
      await settled(gw, [backend])
    })

    t.test('tunnel GET that stops reading, then reads again', async tt => {
      const tc = await TunnelClient.open(gw.port)
      await tc.play()
      await stallThenRead(tt, backend.conns.at(-1)!, tc.get.socket, tc.get.units)
      tc.close()
    })

    t.test('tunnel GET through a portal and a relay node, the client stops reading, then reads again', async tt => {
      // The portal reads its relay node into a buffer of its own too (RelayReads): both hops at once.
      const relay = await startTestGateway(tt, [backend], { role: 'relay', ...layer })
      const portal = await startTestGateway(tt, [], {
        role: 'portal',
        ...layer,
        cluster: { relays: [`127.0.0.1:${relay.port}`], probeIntervalMs: 200, connectTimeoutMs: 1000 }
      })
      for (const deadline = Date.now() + 10_000; await metric(portal, 'tunnelgate_relay_up') !== 1;) {
        if (Date.now() > deadline) throw new Error('the portal never saw its relay node up')
        await pause(50)
      }
      const tc = await TunnelClient.open(portal.port)
      await tc.play()
      await stallThenRead(tt, backend.conns.at(-1)!, tc.get.socket, tc.get.units, 30_000)
      tc.close()
      await settled(relay, [backend])
    })

    t.test('plain RTSP client that stops reading, then reads again', async tt => {
      const { socket, units } = await playPlainRtsp(gw.port)
      await stallThenRead(tt, backend.conns.at(-1)!, socket, units)
      socket.destroy()
    })
  })
}

t.test('backend.readBufferBytes is checked', async t => {
  const { buildConfig } = await import('../../src/config/config.js')
  for (const v of [-1, 1, 1023, (1 << 20) + 1, 1.5, '16384']) {
    t.throws(
      () => buildConfig([{ backend: { readBufferBytes: v } }]),
      /backend\.readBufferBytes/,
      `refused: ${JSON.stringify(v)}`
    )
  }
  for (const v of [
    0, 1024, 65536, 1 << 20
  ]) t.equal(buildConfig([{ backend: { readBufferBytes: v } }]).backend.readBufferBytes, v)
})
