import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { createMetrics } from '../../../src/core/metrics.js'

/** Text of one metric family (HELP/TYPE lines and samples) from a registry dump. */
const family = (text: string, name: string): string =>
  text.split('\n').filter(l => l.includes(`${name}{`) || l.startsWith(`${name} `)).join('\n')

t.test('deferred counters read exactly like plain prom-client counters', async t => {
  const m = createMetrics({ defaultMetrics: false })
  const ref = new Registry()
  const plainBytes = new Counter({
    name: 'tunnelgate_bytes_total',
    help: 'x',
    labelNames: ['direction'],
    registers: [ref]
  })
  const plainLegs = new Counter({
    name: 'tunnelgate_legs_total',
    help: 'x',
    labelNames: ['leg', 'transport'],
    registers: [ref]
  })
  const plainErr = new Counter({ name: 'tunnelgate_errors_total', help: 'x', labelNames: ['code'], registers: [ref] })
  for (let i = 0; i < 1000; i++) {
    for (const c of [m.bytesTotal, plainBytes]) {
      c.inc({ direction: 'backend_to_client' }, 1404 + i)
      if (i % 3 === 0) c.inc({ direction: 'client_to_backend' }, 17)
      if (i % 7 === 0) c.inc({ direction: 'client_to_backend' })
    }
    for (const c of [m.legsTotal, plainLegs]) c.inc({ leg: i % 2 === 0 ? 'get' : 'post', transport: 'http-tunnel' })
    for (const c of [m.errorsTotal, plainErr]) c.inc({ code: 'TG_ERR_B64_GARBAGE' }, i % 5)
  }
  // A multi-label key that a naive join would confuse with another ('a:b' + 'c' vs 'a' + 'b:c').
  for (const c of [m.legsTotal, plainLegs]) {
    c.inc({ leg: 'a:b', transport: 'c' }, 2); c.inc({ leg: 'a', transport: 'b:c' }, 3)
  }
  const ours = await m.registry.metrics()
  const theirs = await ref.metrics()
  for (const name of ['tunnelgate_bytes_total', 'tunnelgate_legs_total', 'tunnelgate_errors_total']) {
    t.equal(family(ours, name), family(theirs, name), name)
    t.ok(family(ours, name).length > 0)
  }
  t.same((await m.bytesTotal.get()).values, (await plainBytes.get()).values, 'get() folds pending increments in')
  // Increments after a read are not lost, and are not counted twice.
  m.bytesTotal.inc({ direction: 'backend_to_client' }, 5)
  plainBytes.inc({ direction: 'backend_to_client' }, 5)
  t.same((await m.bytesTotal.get()).values, (await plainBytes.get()).values)
  t.same((await m.bytesTotal.get()).values, (await plainBytes.get()).values, 'a second read adds nothing')
})

t.test('what prom-client refuses is refused as before', async t => {
  const m = createMetrics({ defaultMetrics: false })
  m.bytesTotal.inc({ direction: 'x' }, 1)
  t.throws(() => m.bytesTotal.inc({ direction: 'x' }, -1), /decrease/)
  t.throws(() => m.bytesTotal.inc({ direction: 'x' }, Infinity), /not a valid number/)
  t.throws(() => (m.bytesTotal.inc as (l: unknown, v: number) => void)({ nope: 'x' }, 1), /label/)
  t.throws(() => (m.bytesTotal.inc as (l: unknown, v: number) => void)({ direction: 'y', nope: 'x' }, 1), /label/)
  const v = (await m.bytesTotal.get()).values
  t.same(v.map(s => [s.labels, s.value]), [[{ direction: 'x' }, 1]])
  // A counter without labels keeps its plain form too.
  m.framesDroppedTotal.inc(3)
  t.equal((await m.framesDroppedTotal.get()).values[0]!.value, 3)
})

t.test('reset and remove drop pending increments with the values they cover', async t => {
  const m = createMetrics({ defaultMetrics: false })
  m.errorsTotal.inc({ code: 'A' }, 1)
  m.errorsTotal.inc({ code: 'A' }, 4)
  m.errorsTotal.inc({ code: 'B' }, 2)
  m.errorsTotal.inc({ code: 'B' }, 2)
  m.errorsTotal.remove({ code: 'A' })
  t.same((await m.errorsTotal.get()).values.map(s => [s.labels.code, s.value]), [['B', 4]])
  m.errorsTotal.inc({ code: 'B' }, 1)
  m.errorsTotal.reset()
  t.same((await m.errorsTotal.get()).values, [])
  m.errorsTotal.inc({ code: 'B' }, 1)
  m.errorsTotal.inc({ code: 'B' }, 1)
  t.same((await m.errorsTotal.get()).values.map(s => [s.labels.code, s.value]), [['B', 2]])
})
