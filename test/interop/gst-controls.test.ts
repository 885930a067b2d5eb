/**
 * Interop: GStreamer (playbin with rtspsrc over rtsph://, driven by test/peers/gst-player.py) plays,
 * pauses, resumes, seeks on a VOD file and tears down through the gateway, against both backends:
 * GStreamer's RTSP server (/vod) and the embedded origin (/demo). Afterwards nothing is left open.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import type { Gateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/backends/origin/index.js'
import { startGstServer, type GstServer } from '../helpers/gst-server.js'
import { startTestGateway } from '../helpers/interop.js'
import { checkGstControls, FPS } from '../helpers/interop-checks.js'
import { makeTestMedia } from '../helpers/peers.js'

let dir = ''
let gst: GstServer | undefined
let origin: Awaited<ReturnType<typeof startOrigin>> | undefined
let gwGst: Gateway | undefined
let gwOrigin: Gateway | undefined

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tg-interop-gstctl-'))
  const vodFile = await makeTestMedia(dir, 20, { width: 320, height: 240, fps: FPS })
  gst = await startGstServer({ vodFile, width: 320, height: 240, fps: FPS })
  gwGst = await startTestGateway([gst.url])
  origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) })
  gwOrigin = await startTestGateway([`rtsp://127.0.0.1:${origin.port}`])
})

t.teardown(async () => {
  await gwGst?.close()
  await gwOrigin?.close()
  await gst?.close()
  await origin?.close()
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

t.test('GStreamer controls through the tunnel to gst-rtsp-server /vod', tt => checkGstControls(tt, { gw: gwGst!, backendPorts: [gst!.port] }, '/vod', 8))
t.test('GStreamer controls through the tunnel to the embedded origin /demo', tt => checkGstControls(tt, { gw: gwOrigin!, backendPorts: [origin!.port] }, '/demo', 6))
