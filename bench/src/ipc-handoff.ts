/**
 * Micro-benchmark of the portal → relay worker leg hand-off (src/route/workers.ts), which bounds
 * how fast a layout with local workers (b1, b2) takes a burst of new tunnels.
 *
 * The portal passes each accepted socket over the worker's IPC channel (`child.send(msg, socket)`).
 * Node sends one socket at a time: the next waits until the worker has read the last one and its
 * NODE_HANDLE_ACK has come back (lib/internal/child_process.js, `_handleQueue`), and every other
 * message to that worker queues behind it. Hand-offs to one worker are therefore serialized by
 * round trips through both event loops, and a worker busy with its tunnels answers each only when
 * its loop comes round.
 *
 *   subject    `legs` accepted sockets handed to a forked sink, timed until it has all of them
 *   baseline   the same messages to the same sink without a socket
 *
 * once with an idle sink and once with a sink whose every event-loop turn takes `busyUs` µs (a
 * worker busy with its tunnels). Ratios, median of `rounds` interleaved rounds.
 */
import { fork, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fromRounds, type MicroResult } from './micro.js'
import { benchArgs } from './scenarios.js'

interface SinkReport { got: number }

/** The forked end: counts legs (closing each socket), reports when `expect` arrived. */
export function runHandoffSink (busyUs: number): void {
  let got = 0
  let expect = -1
  process.on('message', (m: { leg?: number, expect?: number }, handle?: net.Socket) => {
    if (m.expect !== undefined) { expect = m.expect; got = 0; return }
    handle?.destroy()
    if (++got === expect) process.send!({ got } satisfies SinkReport)
  })
  if (busyUs > 0) {
    const spin = (): void => {
      const end = performance.now() + busyUs / 1000
      while (performance.now() < end) { /* a loop turn of a busy worker */ }
      setImmediate(spin)
    }
    spin()
  }
  process.on('disconnect', () => process.exit(0))
  process.send!({ got: 0 } satisfies SinkReport)
}

function nextReport (child: ChildProcess): Promise<SinkReport> {
  return new Promise((resolve, reject) => {
    const onExit = (): void => reject(new Error('hand-off sink exited'))
    child.once('exit', onExit)
    child.once('message', (m: SinkReport) => { child.off('exit', onExit); resolve(m) })
  })
}

/** `n` accepted, not yet read sockets (with their client ends, to close afterwards). */
async function acceptedSockets (n: number): Promise<{
  accepted: net.Socket[]
  clients: net.Socket[]
  close: () => void
}> {
  const accepted: net.Socket[] = []
  const server = net.createServer({ pauseOnConnect: true }, s => { accepted.push(s) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const clients: net.Socket[] = []
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1')
    c.on('error', () => {})
    clients.push(c)
  }
  while (accepted.length < n) await new Promise(resolve => setTimeout(resolve, 5))
  return { accepted, clients, close: () => { server.close(); for (const c of clients) c.destroy() } }
}

/** ns per leg to get `legs` messages (with sockets or not) into the sink. */
async function timeLegs (child: ChildProcess, legs: number, sockets: net.Socket[] | null): Promise<number> {
  child.send({ expect: legs })
  const done = nextReport(child)
  const t0 = performance.now()
  for (let i = 0; i < legs; i++) {
    if (sockets === null) child.send({ leg: i })
    else child.send({ leg: i }, sockets[i], { keepOpen: false })
  }
  await done
  return ((performance.now() - t0) * 1e6) / legs
}

export async function runHandoffMicro (legs: number, busyUs: number, rounds = 3): Promise<MicroResult[]> {
  const out: MicroResult[] = []
  const args = benchArgs('child.js')
  for (const busy of [0, busyUs]) {
    const child = fork(args[args.length - 1]!, ['handoff-sink', String(busy)], {
      execArgv: args.slice(0, -1), stdio: ['ignore', 'ignore', 'inherit', 'ipc']
    })
    try {
      await nextReport(child)
      const s: number[] = []
      const b: number[] = []
      for (let r = 0; r < rounds; r++) {
        const socks = await acceptedSockets(legs)
        try {
          s.push(await timeLegs(child, legs, socks.accepted))
          b.push(await timeLegs(child, legs, null))
        } finally { socks.close() }
      }
      out.push(fromRounds(
        busy === 0
          ? `leg hand-off to an idle relay worker (${legs} sockets over its IPC channel, one per round trip)`
          : `leg hand-off to a relay worker busy ${busy} µs per event-loop turn (${legs} sockets)`,
        'leg',
        busy === 0 ? 'the same IPC messages without a socket' : 'the same messages to that worker without a socket',
        s, b))
    } finally { child.kill() }
  }
  return out
}
