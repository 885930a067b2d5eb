/**
 * The bench's memory and GC readings of a middle box (procstat.ts memorySnapshot / gcStats over
 * the gc-hook.ts preload): a hooked Node box (the raw relay, started as the bench starts it)
 * answers with its heap after a forced GC and with its GC pause counters, again and again; a
 * process without the hook (the bench source) is never signalled — SIGUSR2 would kill it — and
 * gets no heap figure.
 */
import t from 'tap'
import { gcBetween, gcStats, memorySnapshot, rssBytes } from '../../bench/src/procstat.js'
import { startScenario, startSource } from '../../bench/src/scenarios.js'

t.setTimeout(60_000)

t.test('memorySnapshot and gcStats over the gc-hook preload', async t => {
  const source = await startSource(10, 10)
  t.teardown(() => source.stop())
  const box = await startScenario('e', source.port)
  t.teardown(() => box.stop())
  t.ok(box.gcDir !== undefined, 'the raw relay is started with a gc directory')
  // The hook announces itself when the process starts; give it the moment it needs.
  const deadline = Date.now() + 10_000
  let first = await memorySnapshot(box.pids(), box.gcDir)
  while (!first.gc && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100)); first = await memorySnapshot(box.pids(), box.gcDir)
  }
  t.ok(first.gc, 'the box ran a forced GC before answering')
  t.ok(first.heap !== null && first.heap > 0, 'V8 heap used + external reported')
  t.ok(first.rss > 0, 'RSS read')
  const again = await memorySnapshot(box.pids(), box.gcDir)
  t.ok(again.gc && again.heap !== null, 'a second reading answers too (its sequence moved on)')

  const a = await gcStats(box.pids(), box.gcDir)
  const from = Date.now()
  await memorySnapshot(box.pids(), box.gcDir) // two more full collections in the box
  const b = await gcStats(box.pids(), box.gcDir)
  t.ok(a !== null && b !== null && a.procs.size === 1 && b.procs.size === 1,
    'GC counters read from the one box process')
  const d = gcBetween(a, b, from, Date.now())
  t.ok(d !== null && d.count >= 2, 'the forced collections in between are counted')
  t.equal(gcBetween(a, { procs: new Map() }, 0, 1), null,
    'a process that did not answer: no figure rather than a partial one')

  const plain = await memorySnapshot([source.pid], box.gcDir, 500)
  t.equal(plain.heap, null, 'a process without the hook: no heap figure')
  t.equal(plain.gc, false, '… and no GC')
  t.equal(await gcStats([source.pid], box.gcDir, 200), null, '… and no GC counters')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.ok(rssBytes(source.pid) > 0, 'and it was not signalled: still alive')
})
