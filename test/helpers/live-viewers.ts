/**
 * A reusable load client for live paths: N raw QuickTime-tunnel viewers (GET + POST, one base64
 * block per RTSP message) that DESCRIBE, SETUP every track (interleaved 0-1, 2-3, ...) and PLAY,
 * opened in batches. Each viewer records what a test (or the benchmark's "viewers per core on one
 * live stream" scenario) needs: the PLAY reply, when its first RTP packet arrived relative to the
 * PLAY request, its first video payload, packet/byte counts, and optionally (seq, payload hash)
 * of every video packet, so tests can check that all viewers got the same payloads in order.
 */
import { createHash } from 'node:crypto'
import { TunnelClient, type Response as TunnelReply } from './tunnel-client.js'
import { controlUrl, sdpMediaControls } from './interop.js'

export interface LiveViewerOptions {
  /** Keep (seq, md5 of payload) of every video RTP packet. */
  recordVideo?: boolean
  /** RTSP URL authority to use in requests (default rtsp://127.0.0.1:<port>). */
  host?: string
  timeoutMs?: number
  /** First interleaved channel: track i is SET UP on channelBase + 2i (RTP) and + 2i + 1 (RTCP). Default 0. */
  channelBase?: number
}

export interface VideoRecord { seq: number, hash: string }

export class LiveViewerClient {
  readonly client: TunnelClient
  readonly url: string
  play: TunnelReply | undefined
  /** performance.now() when the PLAY request was written, and when the first RTP packet arrived. */
  playSentAt = 0
  firstPacketAt = 0
  /** Payload of the first video RTP packet, and the channel layout (video = 0, audio = 2). */
  firstVideo: Buffer | null = null
  packets = 0
  bytes = 0
  readonly video: VideoRecord[] = []
  /** Channel of each SDP media (index → RTP channel). */
  readonly channelOf: Record<string, number> = {}
  /** Frames that arrived on a channel this viewer did not set up. */
  foreignFrames = 0

  private constructor (client: TunnelClient, url: string) {
    this.client = client
    this.url = url
  }

  /** Open the tunnel, DESCRIBE, SETUP every track, PLAY. */
  static async start (port: number, path: string, o: LiveViewerOptions = {}): Promise<LiveViewerClient> {
    const client = await TunnelClient.player(port, path)
    const url = `rtsp://${o.host ?? `127.0.0.1:${port}`}${path}`
    const v = new LiveViewerClient(client, url)
    try {
      await v.#run(o)
    } catch (err) {
      client.close()
      throw err
    }
    return v
  }

  async #run (o: LiveViewerOptions): Promise<void> {
    const c = this.client
    const timeout = o.timeoutMs ?? 15000
    const d = await c.request('DESCRIBE', this.url, { Accept: 'application/sdp' }, { timeoutMs: timeout })
    if (d.status !== 200) throw new Error(`DESCRIBE ${this.url}: ${d.status}`)
    const base = d.header('content-base') ?? `${this.url}/`
    const medias = sdpMediaControls(d.body.toString('latin1'))
    let videoChannel = -1
    const cb = o.channelBase ?? 0
    const mine = new Set<number>()
    for (const [i, m] of medias.entries()) {
      const s = await c.request(
        'SETUP',
        controlUrl(base, m.control),
        { Transport: `RTP/AVP/TCP;unicast;interleaved=${cb + 2 * i}-${cb + 2 * i + 1}` },
        { timeoutMs: timeout }
      )
      if (s.status !== 200) throw new Error(`SETUP ${m.control}: ${s.status}`)
      const ch = /interleaved=(\d+)/.exec(s.header('transport') ?? '')
      const rtp = ch === null ? cb + 2 * i : Number(ch[1])
      this.channelOf[m.media] = rtp
      mine.add(rtp).add(rtp + 1)
      if (m.media === 'video' && videoChannel === -1) videoChannel = rtp
    }
    c.onFrame = (channel, payload) => {
      if (!mine.has(channel)) { this.foreignFrames++; return }
      if (channel % 2 === 1) return // RTCP
      if (this.packets === 0) this.firstPacketAt = performance.now()
      this.packets++
      this.bytes += payload.length
      if (channel !== videoChannel) return
      const body = payload.subarray(12 + 4 * (payload[0]! & 0x0f))
      if (this.firstVideo === null) this.firstVideo = Buffer.from(body)
      if (o.recordVideo === true) {
        this.video.push({ seq: payload.readUInt16BE(2), hash: createHash('md5').update(body).digest('hex') })
      }
    }
    this.playSentAt = performance.now()
    this.play = await c.request('PLAY', base, { Range: 'npt=0.000-' }, { timeoutMs: timeout })
    if (this.play.status !== 200) throw new Error(`PLAY: ${this.play.status}`)
  }

  /** ms from the PLAY request to the first RTP packet (NaN before it). */
  get startMs (): number { return this.firstPacketAt === 0 ? NaN : this.firstPacketAt - this.playSentAt }

  async teardown (): Promise<void> {
    await this.client.request('TEARDOWN', this.url, {}, { timeoutMs: 5000 }).catch(() => {})
  }

  close (): void { this.client.close() }
}

/** Open `count` viewers, `batch` at a time (each batch in parallel). */
export async function openLiveViewers (
  port: number,
  path: string,
  count: number,
  o: LiveViewerOptions & { batch?: number } = {}
): Promise<LiveViewerClient[]> {
  const out: LiveViewerClient[] = []
  const batch = Math.max(1, o.batch ?? 25)
  try {
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i)
      out.push(...await Promise.all(Array.from({ length: n }, () => LiveViewerClient.start(port, path, o))))
    }
  } catch (err) {
    for (const v of out) v.close()
    throw err
  }
  return out
}

/**
 * The window of video sequence numbers every viewer received: from the latest first seq to the
 * earliest last seq (16-bit serial arithmetic). Returns each viewer's hashes in that window, in
 * arrival order, plus whether every viewer's seqs in it are contiguous.
 */
export function commonVideoWindow (viewers: LiveViewerClient[]): {
  length: number
  identical: boolean
  contiguous: boolean
} {
  const lists = viewers.map(v => v.video)
  if (lists.some(l => l.length === 0)) return { length: 0, identical: false, contiguous: false }
  // Unwrap each list to a monotonically increasing 32-bit-ish index relative to the first viewer's first seq.
  const ref = lists[0]![0]!.seq
  const unwrap = (l: VideoRecord[]): number[] => {
    let prev = ((l[0]!.seq - ref + 0x8000) & 0xffff) - 0x8000
    return l.map((r, i) => {
      if (i === 0) return prev
      const step = ((r.seq - (l[i - 1]!.seq)) + 0x10000) & 0xffff
      prev += step < 0x8000 ? step : step - 0x10000
      return prev
    })
  }
  const idx = lists.map(unwrap)
  const start = Math.max(...idx.map(a => a[0]!))
  const end = Math.min(...idx.map(a => a[a.length - 1]!))
  if (end <= start) return { length: 0, identical: false, contiguous: false }
  const windows = lists.map((l, k) => l.filter((_, i) => idx[k]![i]! >= start && idx[k]![i]! <= end))
  const contiguous = windows.every(
    (w, k) =>
      w.length === end - start + 1 &&
      idx[k]!.filter(x => x >= start && x <= end).every((x, i, a) => i === 0 || x === a[i - 1]! + 1)
  )
  const first = windows[0]!.map(r => r.hash).join(',')
  const identical = windows.every(w => w.map(r => r.hash).join(',') === first)
  return { length: end - start + 1, identical, contiguous }
}

/** H.264 NAL type of an RTP payload (for FU-A the fragmented NAL's type, with its start bit). */
export function h264Nal (payload: Buffer): { type: number, fuStart: boolean | null } {
  const t = payload[0]! & 0x1f
  if (t === 28) return { type: payload[1]! & 0x1f, fuStart: (payload[1]! & 0x80) !== 0 }
  return { type: t, fuStart: null }
}
