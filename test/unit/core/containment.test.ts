/**
 * contained() and its helpers (src/core/containment.ts): a throw goes to the owner with its entry
 * point and the fallback is returned; the hook injects faults by entry point and tag; the
 * environment form parses `entry@marker` rules; reportFault counts and logs without the thrown
 * value's data beyond its message.
 */
import t from 'tap'
import {
  contained, describeFault, InjectedFault, installFaultsFromEnv, reportFault, setFaultHook, socketOwner, ENTRY_POINTS,
  type EntryPoint
} from '../../../src/core/containment.js'

t.afterEach(() => { setFaultHook(null) })

const owner = (tag = ''): {
  faultTag: string,
  faults: Array<[unknown, EntryPoint]>,
  fault: (e: unknown, w: EntryPoint) => void
} => {
  const o = {
    faultTag: tag,
    faults: [] as Array<[unknown, EntryPoint]>,
    fault (e: unknown, w: EntryPoint) { o.faults.push([e, w]) }
  }
  return o
}

t.test('a throw goes to the owner, the fallback comes back', async t => {
  const o = owner()
  const f = contained(o, 'session-backend-read', (n: number) => { if (n > 1) throw new Error('boom'); return true },
    false)
  t.equal(f(1), true, 'no throw: the handler\'s value')
  t.equal(f(2), false, 'a throw: the fallback')
  t.equal(o.faults.length, 1)
  t.equal(o.faults[0]![1], 'session-backend-read', 'with its entry point')
  t.match(o.faults[0]![0], { message: 'boom' })
})

t.test('the hook injects at one entry point for one tag', async t => {
  const victim = owner('ua-victim')
  const other = owner('ua-other')
  setFaultHook((where, tag) => {
    if (where === 'tunnel-post-data' && tag.includes('victim')) throw new InjectedFault(where)
  })
  let ran = 0
  contained(victim, 'tunnel-post-data', () => { ran++ })()
  contained(other, 'tunnel-post-data', () => { ran++ })()
  contained(victim, 'tunnel-get-data', () => { ran++ })()
  t.equal(ran, 2, 'the victim\'s handler at that entry point did not run')
  t.equal(victim.faults.length, 1)
  t.type(victim.faults[0]![0], InjectedFault)
  t.equal(other.faults.length, 0)
})

t.test('TUNNELGATE_FAULTS rules', async t => {
  installFaultsFromEnv({ TUNNELGATE_FAULTS: 'door-data@10.0.0.1, ws-close' })
  const a = owner('10.0.0.1')
  const b = owner('10.0.0.2')
  contained(a, 'door-data', () => {})()
  contained(b, 'door-data', () => {})()
  contained(b, 'ws-close', () => {})()
  t.equal(a.faults.length, 1, 'entry@marker: the matching tag')
  t.equal(b.faults.length, 1, 'an entry point without a marker: every tag')
  setFaultHook(null)
  installFaultsFromEnv({})
  contained(a, 'door-data', () => {})()
  t.equal(a.faults.length, 1, 'no variable: no hook')
})

t.test('reportFault and describeFault', async t => {
  const counted: string[] = []
  const logged: object[] = []
  reportFault({ errorsTotal: { inc: l => counted.push(l.code) }, faultsTotal: { inc: l => counted.push(l.where) } },
    { error: o => logged.push(o) }, 'rtsp-data', new TypeError('bad thing'), { client: '1.2.3.4' })
  t.same(counted, ['TG_ERR_INTERNAL', 'rtsp-data'])
  t.match(logged[0], { code: 'TG_ERR_INTERNAL', where: 'rtsp-data', client: '1.2.3.4', error: 'TypeError: bad thing' })
  t.match(describeFault('x'.repeat(1000)).error.length, 300, 'a thrown non-Error is cut to 300 characters')
  t.notOk('stack' in describeFault(42), 'no stack for a non-Error')
})

t.test('socketOwner destroys its socket and reports', async t => {
  let destroyed = 0
  const seen: EntryPoint[] = []
  const o = socketOwner({ destroy () { destroyed++ } }, 'tag',
    w => { seen.push(w); throw new Error('a reporter that throws') })
  contained(o, 'portal-post-data', () => { throw new Error('x') })()
  t.equal(destroyed, 1)
  t.same(seen, ['portal-post-data'], 'reported, and a throwing reporter does not stop the destroy')
})

t.test('every entry point is a distinct name', async t => {
  t.equal(new Set(ENTRY_POINTS).size, ENTRY_POINTS.length)
})
