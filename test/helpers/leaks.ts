/**
 * Leak checks for the hardening tests (issue 5): open file descriptors (/proc/self/fd), active
 * timers and sockets (process.getActiveResourcesInfo()), the tunnels_active gauge and backend
 * connections return to their starting values after each test.
 */
import { readdirSync } from 'node:fs'
import type { Gateway } from '../../src/gateway.js'
import type { ScriptedBackend } from './scripted-backend.js'

export interface LeakSnapshot {
  fds: number
  timers: number
  sockets: number
  tunnels: number
}

function resources (): { timers: number, sockets: number } {
  let timers = 0
  let sockets = 0
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'Timeout') timers++
    else if (r === 'TCPSocketWrap' || r === 'TCPWrap' || r === 'PipeWrap') sockets++
  }
  return { timers, sockets }
}

export async function leakSnapshot (gw: Gateway): Promise<LeakSnapshot> {
  const tunnels = (await gw.metrics.tunnelsActive.get()).values.reduce((n, v) => n + v.value, 0)
  return { fds: readdirSync('/proc/self/fd').length, ...resources(), tunnels }
}

/**
 * Wait (up to `timeoutMs`: close paths keep 1-2 s destroy timers) until fds, timers, sockets and
 * the tunnels gauge are back to `before` and every backend connection is closed; otherwise throw
 * with the difference.
 */
export async function assertNoLeaks (gw: Gateway, before: LeakSnapshot, backends: ScriptedBackend[] = [], timeoutMs = 6000): Promise<LeakSnapshot> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const now = await leakSnapshot(gw)
    const open = backends.reduce((n, b) => n + b.conns.filter(c => !c.closed).length, 0)
    if (now.fds <= before.fds && now.timers <= before.timers && now.sockets <= before.sockets && now.tunnels === before.tunnels && open === 0) return now
    if (Date.now() > deadline) {
      throw new Error(`leak: before ${JSON.stringify(before)} after ${JSON.stringify(now)} backend connections open=${open}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
