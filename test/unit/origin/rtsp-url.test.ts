import t from 'tap'
import { parseNptRange, parseTarget } from '../../../src/origin/rtsp-url.js'

t.test('request targets', async (t) => {
  t.same(parseTarget('rtsp://h:554/demo'), { name: 'demo', live: false, base: 'rtsp://h:554/demo' })
  t.same(parseTarget('rtsp://h/demo.mp4/'), { name: 'demo.mp4', live: false, base: 'rtsp://h/demo.mp4' })
  t.same(parseTarget('rtsp://h/live/demo/trackID=2'), {
    name: 'demo',
    live: true,
    track: 2,
    base: 'rtsp://h/live/demo'
  })
  t.same(parseTarget('/demo?x=1'), { name: 'demo', live: false, base: '/demo' })
  t.equal(parseTarget('*'), undefined)
  t.equal(parseTarget('rtsp://h/%zz'), undefined)
})

t.test('npt ranges', async (t) => {
  t.same(parseNptRange('npt=5-'), { start: 5 })
  t.same(parseNptRange('npt=0.000-'), { start: 0 })
  t.same(parseNptRange('npt=1.5-10'), { start: 1.5, end: 10 })
  t.same(parseNptRange('npt=0:01:02.5-'), { start: 62.5 })
  t.same(parseNptRange('npt=now-'), {})
  t.same(parseNptRange('npt=-4'), { start: 0, end: 4 })
  for (const bad of ['smpte=0:00:01-', 'npt=abc-', 'npt=5-2', 'npt=',
    'clock=19961108T143720Z-']) t.equal(parseNptRange(bad), undefined, bad)
})
