/**
 * A slow live viewer never slows the others (docs/live-fanout.md): one LiveChannel of the relay
 * fed by the real embedded origin (/live/demo), with two viewers whose output side is a
 * controllable queue (a real socket cannot be made slow deterministically on loopback: the kernel
 * buffers megabytes). The "slow" viewer reports a full queue for a while:
 *  - the fast viewer gets every video packet in order (contiguous seqs) the whole time;
 *  - the slow one gets whole frames only: it stops at a frame boundary, its drops are counted
 *    (tunnelgate_live_dropped_frames_total, TG_ERR_LIVE_VIEWER_SLOW), and when its queue drains it
 *    resumes at a keyframe (its first packet after the gap is SPS/IDR).
 */
import t from 'tap'
import pino from 'pino'
import { startOrigin } from '../../src/origin/index.js'
import { buildConfig } from '../../src/config/config.js'
import { createMetrics } from '../../src/core/metrics.js'
import { BackendPool } from '../../src/backends/pool.js'
import { resolveRoute } from '../../src/backends/routes.js'
import { LiveRegistry } from '../../src/live/registry.js'
import { newPlayState, type ChannelViewer, type LiveChannel, type RtpInfoEntry } from '../../src/live/fanout.js'
import { RtspDemuxer } from '../../src/tunnel/codec/demux.js'
import { waitFor } from '../helpers/wait.js'
import { h264Nal } from '../helpers/live-viewers.js'

const quietLog = { info () {}, warn () {}, error () {} }

class QueueViewer implements ChannelViewer {
  readonly play = newPlayState()
  channels = [{ rtp: 0, rtcp: 1 }, { rtp: 2, rtcp: 3 }]
  signature = '0.1,2.3'
  /** What the "socket" holds unsent. */
  backlog = 0
  info: RtpInfoEntry[] | null = null
  readonly video: Array<{ seq: number, nal: number, marker: boolean, at: number }> = []
  readonly #demux = new RtspDemuxer({ maxBodyBytes: 1 << 20 })
  get queued (): number { return this.backlog }
  write (buf: Buffer): void {
    for (const u of this.#demux.push(buf)) {
      if (u.kind !== 'frame' || u.channel !== 0) continue
      this.video.push({
        seq: u.payload.readUInt16BE(2),
        nal: h264Nal(u.payload.subarray(12)).type,
        marker: (u.payload[1]! & 0x80) !== 0,
        at: Date.now()
      })
    }
  }

  canStart (): boolean { return this.info === null }
  started (info: RtpInfoEntry[]): void { this.info = info }
  sdpReady (): void {}
  failed (): void {}
  verdict (): void {}
  drop (): void {}
}

t.test('a slow viewer drops whole frames to the next keyframe; the other viewer is untouched', async tt => {
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: quietLog })
  const config = buildConfig([
    {
      port: 0,
      workers: 0,
      logLevel: 'silent',
      backends: [`rtsp://127.0.0.1:${origin.port}`],
      backend: { probeIntervalMs: 0 },
      routes: [{ path: '/live', backends: [], live: true }],
      live: { viewerQueueBytes: 64 * 1024 }
    }
  ])
  const metrics = createMetrics({ defaultMetrics: false })
  const registry = new LiveRegistry({
    config,
    pool: new BackendPool(config, metrics),
    metrics,
    logger: pino({ level: 'silent' })
  })
  tt.teardown(async () => { registry.close(); await origin.close() })
  const ch = registry.channelFor('/live/demo', resolveRoute(config.routes, '/live/demo')!, false) as LiveChannel
  const fast = new QueueViewer()
  const slow = new QueueViewer()
  ch.attach(fast)
  ch.attach(slow)
  await waitFor(() => ch.state === 'ready', 'the live path plays', 5000)
  ch.play(fast)
  ch.play(slow)
  await waitFor(() => fast.info !== null && slow.info !== null, 'both started', 5000)
  tt.equal(fast.video[0]!.seq, fast.info!.find(e => e.track === 0)!.seq, 'RTP-Info seq = first video packet')
  await waitFor(() => slow.video.length > 50, 'slow viewer received video', 5000)
  // The slow viewer's socket is "full" for 2.5 s (more than 2 GOPs).
  slow.backlog = 10 * 1024 * 1024
  const fullAt = Date.now()
  const before = slow.video.length
  await new Promise(resolve => setTimeout(resolve, 2500))
  const during = slow.video.slice(before).filter(v => v.at > fullAt + 100).length
  tt.equal(during, 0, 'nothing written to the full viewer (after finishing the frame it was in)')
  const lastBefore = slow.video.at(-1)!
  tt.ok(lastBefore.marker, 'the last video packet before the gap ends an access unit (RTP marker): whole frames only')
  slow.backlog = 0
  const resumeAt = Date.now()
  await waitFor(() => slow.video.some(v => v.at >= resumeAt), 'slow viewer resumes', 3000)
  const resumed = slow.video.find(v => v.at >= resumeAt)!
  tt.ok(resumed.nal === 7 || resumed.nal === 5, `resumed at a keyframe (first NAL after the gap: ${resumed.nal})`)
  tt.ok(Date.now() - resumeAt < 1500, 'within one GOP')
  await new Promise(resolve => setTimeout(resolve, 300))
  // The fast viewer never missed a packet.
  const seqs = fast.video.map(v => v.seq)
  const gaps = seqs.slice(1).filter((s, i) => ((s - seqs[i]! + 0x10000) & 0xffff) !== 1).length
  tt.equal(gaps, 0, `fast viewer: ${seqs.length} video packets, contiguous`)
  const m = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const got = await metrics.registry.getSingleMetric(name)!.get()
    return got.values
      .filter(v => Object.entries(labels).every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x))
      .reduce((a, v) => a + v.value, 0)
  }
  const frames = await m('tunnelgate_live_dropped_frames_total', { path: '/live/demo' })
  tt.ok(frames >= 50, `dropped frames counted (${frames}: ~2.5 s of video + audio frames)`)
  tt.equal(slow.play.droppedFrames, frames, 'the per-viewer count matches')
  tt.ok(await m('tunnelgate_live_dropped_bytes_total', { path: '/live/demo' }) > 0, 'dropped bytes counted')
  tt.equal(
    await m('tunnelgate_errors_total', { code: 'TG_ERR_LIVE_VIEWER_SLOW' }),
    1,
    'one slow episode (TG_ERR_LIVE_VIEWER_SLOW)'
  )
  ch.detach(fast)
  ch.detach(slow)
})
