/** The PromQL vector parser of the load scraper (src/backends/load-scraper.ts). */
import t from 'tap'
import { parsePromqlVector } from '../../../src/backends/load-scraper.js'

t.test('parsePromqlVector: real answer shapes; errors for anything else', async t => {
  const ok = '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"backend":"o1"},"value":[1732500' +
    '000.123,"3"]},{"metric":{"backend":"o2"},"value":[1732500000.123,"0.5"]}]}}'
  t.same([...parsePromqlVector(ok, 'backend')], [['o1', 3], ['o2', 0.5]])
  t.same([...parsePromqlVector('{"status":"success","data":{"resultType":"vector","result":[]}}', 'backend')], [])
  t.throws(() => parsePromqlVector('{"status":"error","errorType":"bad_data","error":"parse error"}', 'backend'),
    /status error/)
  t.throws(() => parsePromqlVector('{"status":"success","data":{"resultType":"matrix","result":[]}}', 'backend'),
    /not a vector/)
  t.throws(() =>
    parsePromqlVector('{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}',
      'backend'),
  /without a 'backend' label/)
  t.throws(() =>
    parsePromqlVector('{"status":"success","data":{"resultType":"vector","result":[{"metric":{"backend":"x"},"value":' +
      '[1,"NaN"]}]}}',
    'backend'),
  /not a number/)
  t.throws(() => parsePromqlVector('<html>', 'backend'), /not JSON/)
})
