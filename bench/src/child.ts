/**
 * Entry of the bench's helper processes (each runs alone so its CPU is its own):
 *
 *   node bench/dist/child.js source [--port P] [--tick-ms 10] [--phases 10]
 *   node bench/dist/child.js relay --port P --target PORT
 *   node bench/dist/child.js handoff-sink BUSY_US     (forked, for ipc-handoff.ts)
 *
 * source and relay print one JSON line {"port":N} on stdout once listening; they exit on SIGTERM
 * or when stdin closes. handoff-sink talks over its IPC channel and exits when it closes.
 */
import { parseArgs } from 'node:util'
import { BenchSource } from './source.js'
import { startTcpRelay } from './tcp-relay.js'
import { runHandoffSink } from './ipc-handoff.js'

const [kind, ...rest] = process.argv.slice(2)
if (kind === 'handoff-sink') runHandoffSink(Number(rest[0] ?? 0))
else await serve()

async function serve (): Promise<void> {
  const { values: v } = parseArgs({
    args: rest,
    options: {
      port: { type: 'string' }, target: { type: 'string' }, 'tick-ms': { type: 'string' }, phases: { type: 'string' }
    }
  })
  let port = 0
  if (kind === 'source') {
    const src = new BenchSource({
      port: Number(v.port ?? 0), tickMs: Number(v['tick-ms'] ?? 10), phases: Number(v.phases ?? 1)
    })
    port = await src.start()
    process.on('SIGUSR2', () => {
      process.stderr.write(JSON.stringify({ sent: src.packetsSent, dropped: src.packetsDropped }) + '\n')
    })
  } else if (kind === 'relay') {
    const srv = await startTcpRelay({ port: Number(v.port ?? 0), targetPort: Number(v.target) })
    port = (srv.address() as { port: number }).port
  } else {
    process.stderr.write('usage: child.js source|relay|handoff-sink ...\n')
    process.exit(2)
  }
  process.stdout.write(JSON.stringify({ port }) + '\n')
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
  process.on('SIGTERM', () => process.exit(0))
}
