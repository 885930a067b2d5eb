import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Mp4Error, readMp4, type Mp4AudioTrack, type Mp4VideoTrack } from '../../../src/origin/mp4-reader.js'
import { makeTestMedia, runPeer } from '../../helpers/peers.js'

t.test('sample tables of an ffmpeg-made file match ffprobe', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tg-mp4-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = await makeTestMedia(dir, 4)
  const probe = await runPeer('ffprobe',
    ['-v', 'error', '-show_entries', 'stream=codec_name,nb_frames', '-of', 'json', file])
  t.equal(probe.code, 0)
  const streams = (JSON.parse(probe.stdout) as { streams: Array<{ codec_name: string, nb_frames: string }> }).streams
  const mp4 = await readMp4(file)
  const v = mp4.tracks.find((x): x is Mp4VideoTrack => x.kind === 'video')!
  const a = mp4.tracks.find((x): x is Mp4AudioTrack => x.kind === 'audio')!
  t.equal(v.samples.length, Number(streams.find((s) => s.codec_name === 'h264')!.nb_frames),
    'video sample count = nb_frames')
  t.equal(a.samples.length, Number(streams.find((s) => s.codec_name === 'aac')!.nb_frames),
    'audio sample count = nb_frames')
  t.equal(v.samples.length, 100)
  const syncs = v.samples.flatMap((s, i) => s.isSync ? [i] : [])
  t.same(syncs, [0, 25, 50, 75], 'a sync sample every 25 frames')
  t.equal(v.width, 320)
  t.equal(v.height, 180)
  t.equal(v.codec, 'avc1')
  t.equal(v.nalLengthSize, 4)
  t.equal(v.sps[0]![0]! & 0x1f, 7, 'SPS NAL type')
  t.equal(v.pps[0]![0]! & 0x1f, 8, 'PPS NAL type')
  t.ok(Math.abs(v.durationSec - 4) < 0.05)
  // Monotonic timestamps, fixed frame duration, offsets inside the file.
  const frame = v.timescale / 25
  v.samples.forEach((s, i) => { if (s.pts !== i * frame) t.fail(`pts of sample ${i}`) })
  t.equal(a.sampleRate, 48000)
  t.equal(a.channels, 2)
  t.equal(a.objectType, 0x40)
  t.equal((a.asc[0]! >> 3), 2, 'AAC-LC object type in ASC')
  t.ok(a.samples.every((s) => s.duration === 1024 || s === a.samples[a.samples.length - 1]))
})

t.test('the demo file', async (t) => {
  const mp4 = await readMp4(new URL('../../../media/demo.mp4', import.meta.url).pathname)
  const v = mp4.tracks.find((x): x is Mp4VideoTrack => x.kind === 'video')!
  t.equal(v.width, 640)
  t.equal(v.height, 360)
  t.equal(v.samples.length, 300)
  t.ok(v.samples.every((s, i) => s.isSync === (i % 25 === 0)))
  t.ok(v.samples.every((s) => s.pts === s.dts), 'no B-frames')
})

t.test('not an MP4', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tg-mp4-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'junk.mp4'), 'this is not a movie at all, just text\n'.repeat(10))
  await t.rejects(readMp4(join(dir, 'junk.mp4')), Mp4Error)
  await writeFile(join(dir, 'empty.mp4'), '')
  await t.rejects(readMp4(join(dir, 'empty.mp4')), Mp4Error)
})
