/** The per-worker load figures a portal pushes (workerFigures, src/backends/balancing.ts). */
import t from 'tap'
import { workerFigures } from '../../../src/backends/balancing.js'

t.test('workerFigures: each worker gets the sum of the others plus the outside figures', async t => {
  const outside = [{ backend: 'a', source: 'cluster' as const, sessions: 9, bps: 90, at: 5 }]
  const per = workerFigures([
    { backends: [{ name: 'a', sessions: 1, bps: 10 }, { name: 'b', sessions: 2 }] },
    null,
    { backends: [{ name: 'a', sessions: 4, bps: 40 }, { name: 'b', sessions: 0 }] }
  ], outside, 7)
  t.equal(per.length, 3)
  t.same(per[0],
    [outside[0], { backend: 'a', source: 'workers', sessions: 4, bps: 40, at: 7 }, {
      backend: 'b',
      source: 'workers',
      sessions: 0,
      bps: 0,
      at: 7
    }])
  t.same(per[1]!.filter(f => f.source === 'workers').map(f => f.sessions), [5, 2],
    'a worker that did not answer gets everyone')
  t.same(per[2]!.filter(f => f.source === 'workers').map(f => f.sessions), [1, 2])
})
