/**
 * The leak check itself: a timer left armed after a test is a leak whether or not it was
 * unref()'d (Node's getActiveResourcesInfo() lists only the ref'd ones), and it stops being one
 * once cleared or fired.
 */
import t from 'tap'
import type { Gateway } from '../../../src/gateway.js'
import { assertNoLeaks, leakSnapshot } from '../../helpers/leaks.js'

// Only the tunnels gauge is read from the gateway.
const gw = { metrics: { tunnelsActive: { get: async () => ({ values: [] }) } } } as unknown as Gateway

t.test('an unref()\'d timer left armed is a leak until it is cleared', async t => {
  const before = await leakSnapshot(gw)
  const timer = setTimeout(() => {}, 60_000).unref()
  const during = await leakSnapshot(gw)
  t.equal(during.allTimers, before.allTimers + 1, 'counted among all timers')
  t.equal(during.timers, before.timers, 'not among the ref\'d ones Node lists')
  await t.rejects(assertNoLeaks(gw, before, [], 150), /leak: .*"allTimers":/, 'the check fails while it is armed')
  clearTimeout(timer)
  await assertNoLeaks(gw, before, [], 1000)
})

t.test('a timer that fired, and an interval cleared, leave nothing behind', async t => {
  const before = await leakSnapshot(gw)
  await new Promise(resolve => setTimeout(resolve, 5))
  const every = setInterval(() => {}, 5).unref()
  await new Promise(resolve => setTimeout(resolve, 20))
  clearInterval(every)
  const after = await assertNoLeaks(gw, before, [], 1000)
  t.ok(after.allTimers <= before.allTimers, 'back to where it was')
})
