/**
 * The embedded origin driven by a raw RTSP client: PAUSE/resume, error statuses, live
 * timing against wall time, and 50 live viewers receiving identical packets.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startOrigin } from '../../src/origin/index.js'
import { makeTestMedia, RawRtspClient } from '../helpers/peers.js'
import { pause as delay } from '../helpers/wait.js'

async function setupBoth (c: RawRtspClient, url: string): Promise<void> {
  const d = await c.request('DESCRIBE', url)
  if (d.status !== 200) throw new Error(`DESCRIBE ${d.status}`)
  await c.request('SETUP', `${url}/trackID=1`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' })
  await c.request('SETUP', `${url}/trackID=2`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=2-3' })
}

t.test('raw RTSP against the origin', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tg-origin-'))
  await makeTestMedia(dir, 4, { name: 'clip.mp4' })
  await makeTestMedia(dir, 1, { name: 'mpeg4.mp4', videoCodec: 'mpeg4' })
  await writeFile(join(dir, 'junk.mp4'), 'not a movie'.repeat(100))
  const warnings: string[] = []
  const logger = {
    info () {},
    warn (o: object, msg?: string) { warnings.push(`${msg ?? ''} ${JSON.stringify(o)}`) },
    error () {}
  }
  const media = await startOrigin({ port: 0, mediaDir: dir, logger })
  const demo = await startOrigin({ port: 0, logger: { info () {}, warn () {}, error () {} } })
  t.teardown(async () => { await media.close(); await demo.close(); await rm(dir, { recursive: true, force: true }) })

  t.test('bad files are reported once at start-up and skipped', async (t) => {
    t.same(media.streams(), ['clip'])
    t.equal(warnings.filter((w) => w.includes('junk.mp4')).length, 1)
    t.equal(warnings.filter((w) => w.includes('mpeg4.mp4') && w.includes('unsupported video codec')).length, 1)
  })

  t.test('error statuses', async (t) => {
    const c = await RawRtspClient.connect(media.port)
    t.teardown(() => c.close())
    const base = `rtsp://127.0.0.1:${media.port}`
    t.equal((await c.request('DESCRIBE', `${base}/nothing`)).status, 404, 'unknown path')
    t.equal((await c.request('DESCRIBE', `${base}/junk`)).status, 404, 'skipped file')
    t.equal((await c.request('SETUP', `${base}/clip/trackID=9`, { Transport: 'RTP/AVP/TCP;unicast' })).status, 404,
      'unknown track')
    t.equal((await c.request('SETUP', `${base}/clip/trackID=1`, { Transport: 'RTP/AVP;multicast' })).status, 461,
      'multicast')
    t.equal((await c.request('SETUP', `${base}/clip/trackID=1`, { Transport: 'RTP/SAVP/TCP;unicast' })).status, 461,
      'unknown profile')
    t.equal((await c.request('SETUP', `${base}/clip/trackID=1`)).status, 461, 'no Transport')
    const ok = await c.request('SETUP', `${base}/clip/trackID=1`, { Transport: 'RTP/AVP/TCP;unicast' })
    t.equal(ok.status, 200)
    t.match(ok.header('transport'), /interleaved=0-1/, 'allocated channels 0-1')
    t.match(ok.header('session'), /^\d+;timeout=60$/)
    t.equal((await c.request('PLAY', `${base}/clip/`, { Range: 'npt=99-' })).status, 457, 'Range past the end')
    t.equal((await c.request('PLAY', `${base}/clip/`, { Range: 'smpte=0:00:01-' })).status, 457,
      'unsupported range unit')
    t.equal((await c.request('PLAY', `${base}/clip/`, { Range: 'npt=abc-' })).status, 457, 'garbage Range')
    t.equal((await c.request('PLAY', `${base}/clip/`, { Session: '12345' })).status, 454, 'unknown session')
    t.equal((await c.request('ANNOUNCE', `${base}/clip`)).status, 501)
    const gp = await c.request('GET_PARAMETER', `${base}/clip/`)
    t.equal(gp.status, 200, 'GET_PARAMETER keepalive')
    const pos = await c.request('GET_PARAMETER', `${base}/clip/`, { 'Content-Type': 'text/parameters' }, 'position\r\n')
    t.equal(pos.status, 200)
    t.match(pos.body.toString(), /^position: \d+\.\d{3}\r\n$/)
    t.equal((await c.request('GET_PARAMETER', `${base}/clip/`, {}, 'bogus\r\n')).status, 451)
    t.equal((await c.request('TEARDOWN', `${base}/clip/`)).status, 200)
    c.session = undefined
    // Malformed requests: 400 with the CSeq echoed when readable; the connection survives.
    const replies: string[] = []
    c.socket.on('data', (d: Buffer) => replies.push(d.toString('latin1')))
    c.sendRaw('GARBAGE\r\nCSeq: 77\r\n\r\n')
    c.sendRaw('OPTIONS * RTSP/1.0\r\nno colon here\r\nCSeq: 78\r\n\r\n')
    await delay(200)
    t.match(replies.join(''), /RTSP\/1.0 400 Bad Request\r\nCSeq: 77\r\n/)
    t.match(replies.join(''), /RTSP\/1.0 400 Bad Request\r\nCSeq: 78\r\n/)
    t.equal((await c.request('OPTIONS', '*')).status, 200, 'still usable')
    replies.length = 0
    c.sendRaw('OPTIONS * RTSP/1.0\r\nUser-Agent: x\r\n\r\n')
    c.sendRaw('OPTIONS * RTSP/2.0\r\nCSeq: 79\r\n\r\n')
    await delay(200)
    t.match(replies.join(''), /^RTSP\/1.0 400 Bad Request\r\nServer:/, 'no CSeq → 400')
    t.match(replies.join(''), /RTSP\/1.0 505 RTSP Version Not Supported\r\nCSeq: 79\r\n/, 'RTSP/2.0 → 505')
  })

  t.test('PAUSE stops RTP, PLAY resumes with RTP-Info', async (t) => {
    const c = await RawRtspClient.connect(media.port)
    t.teardown(() => c.close())
    const url = `rtsp://127.0.0.1:${media.port}/clip`
    await setupBoth(c, url)
    const seen: Array<{ at: number, seq: number, ts: number, ch: number }> = []
    c.onFrame = (ch, p) => {
      if (ch % 2 === 0) seen.push({ at: Date.now(), ch, seq: p.readUInt16BE(2), ts: p.readUInt32BE(4) })
    }
    const play = await c.request('PLAY', `${url}/`, { Range: 'npt=0-' })
    t.equal(play.status, 200)
    t.match(play.header('range'), /^npt=0\.000-4\.\d{3}$/)
    t.match(play.header('rtp-info'),
      new RegExp(`^url=${url}/trackID=1;seq=\\d+;rtptime=\\d+,url=${url}/trackID=2;seq=\\d+;rtptime=\\d+$`))
    const v0 = /trackID=1;seq=(\d+);rtptime=(\d+)/.exec(play.header('rtp-info')!)!
    await delay(2000)
    const first = seen.find((s) => s.ch === 0)!
    t.equal(first.seq, Number(v0[1]), 'first video seq = RTP-Info seq')
    t.equal(first.ts, Number(v0[2]), 'first video ts = RTP-Info rtptime')
    const pause = await c.request('PAUSE', `${url}/`)
    t.equal(pause.status, 200)
    const nPaused = seen.length
    const lastVideo = seen.filter((s) => s.ch === 0).at(-1)!
    await delay(1000)
    t.equal(seen.length, nPaused, 'no RTP for 1 s while paused')
    const resume = await c.request('PLAY', `${url}/`)
    t.equal(resume.status, 200)
    const info = /trackID=1;seq=(\d+);rtptime=(\d+)/.exec(resume.header('rtp-info') ?? '')
    t.ok(info, 'RTP-Info on resume')
    t.equal(Number(info![1]), (lastVideo.seq + 1) & 0xffff, 'sequence continues')
    const tsAdvance = (Number(info![2]) - Number(v0[2])) >>> 0
    t.ok(tsAdvance >= 1.8 * 90000 && tsAdvance <= 2.3 * 90000,
      `position kept across the pause (${tsAdvance / 90000} s)`)
    await delay(500)
    t.ok(seen.length > nPaused + 10, 'RTP resumes')
    // Seek: the reply names the keyframe actually used.
    const seek = await c.request('PLAY', `${url}/`, { Range: 'npt=2.5-' })
    t.match(seek.header('range'), /^npt=2\.000-/)
    t.equal((await c.request('TEARDOWN', `${url}/`)).status, 200)
  })

  t.test('live: 20 s timing within 1 % and 50 identical viewers', async (t) => {
    const url = `rtsp://127.0.0.1:${demo.port}/live/demo`
    const timing = (async () => {
      const c = await RawRtspClient.connect(demo.port)
      try {
        await setupBoth(c, url)
        let firstTs: number | undefined; let firstAt = 0
        let lastTs = 0; let lastAt = 0; let prevTs = 0; let unwrapped = 0
        c.onFrame = (ch, p) => {
          if (ch !== 0) return
          const ts = p.readUInt32BE(4)
          const now = performance.now()
          if (firstTs === undefined) { firstTs = ts; prevTs = ts; firstAt = now }
          unwrapped += ((ts - prevTs) | 0)
          prevTs = ts
          if (unwrapped !== lastTs) { lastTs = unwrapped; lastAt = now }
        }
        const r = await c.request('PLAY', `${url}/`)
        if (r.status !== 200) throw new Error(`PLAY ${r.status}`)
        await delay(20500)
        return { media: lastTs / 90000, wall: (lastAt - firstAt) / 1000 }
      } finally { c.close() }
    })()
    await delay(1000)
    const viewers = await Promise.all(Array.from({ length: 50 }, async () => {
      const c = await RawRtspClient.connect(demo.port)
      await setupBoth(c, url)
      const pk = new Map<number, string>()
      c.onFrame = (ch, p) => { if (ch === 0) pk.set(p.readUInt16BE(2), createHash('sha1').update(p).digest('hex')) }
      const r = await c.request('PLAY', `${url}/`)
      if (r.status !== 200) throw new Error(`PLAY ${r.status}`)
      return { c, pk }
    }))
    await delay(4000)
    for (const v of viewers) v.c.close()
    // A common window: sequence numbers every viewer has.
    const common = [...viewers[0]!.pk.keys()].filter((s) => viewers.every((v) => v.pk.has(s)))
    t.ok(common.length > 100, `common window of ${common.length} video packets`)
    const digest = (pk: Map<number, string>): string =>
      createHash('sha1').update(common.map((s) => pk.get(s)).join()).digest('hex')
    const ref = digest(viewers[0]!.pk)
    t.ok(viewers.every((v) => digest(v.pk) === ref),
      'all 50 viewers received identical RTP packets (header and payload)')
    const { media: m, wall } = await timing
    t.ok(wall > 19, `played ${wall.toFixed(2)} s`)
    t.ok(Math.abs(m - wall) / wall < 0.01,
      `RTP time ${m.toFixed(3)} s vs wall ${wall.toFixed(3)} s (loops at 12 s included)`)
    const late = Number(/tunnelgate_origin_late_packets_total (\d+)/.exec(await demo.registry.metrics())?.[1])
    t.ok(Number.isFinite(late), `late packets counter (${late})`)
  })
})
