/**
 * The three layouts the fuzzer attacks, their settings in one place, and the processes each one
 * runs (`node bin/tunnelgate.js …` from dist/):
 *
 *   all      one process, workers 0, the embedded origin inside it
 *   workers  a portal process with 2 local relay workers (and the embedded origin)
 *   cluster  an origin process, a relay node in front of it, a portal in front of the relay node
 *
 * Timeouts are short so the gateway settles soon after the traffic stops (the leak oracle waits for
 * it). The limits that judge a slow reader (limits.clientStallMs, clientOutputBytes) keep their
 * defaults: the reference viewer reads slowly whenever the machine is busy and must not be cut off.
 */

export type LayoutName = 'all' | 'workers' | 'cluster'
export const LAYOUTS: readonly LayoutName[] = ['all', 'workers', 'cluster']

export function isLayout (s: string): s is LayoutName {
  return (LAYOUTS as readonly string[]).includes(s)
}

const FUZZED_SETTINGS = {
  host: '127.0.0.1',
  logLevel: 'warn',
  // Any free port for the ops listener: several stacks run side by side.
  ops: { port: 0 },
  limits: { headerTimeoutMs: 1000 },
  tunnel: { pairingTimeoutMs: 1500, idleTimeoutMs: 4000, orphanPostMs: 1000, shutdownGraceMs: 0 },
  backend: { replyTimeoutMs: 3000 },
  live: { lingerMs: 1000 }
}

/** Settings the portal and the relay node share: the secret a portal signs its forwarded legs with. */
const CLUSTER_SHARED: Record<string, unknown> = { secret: 'fuzz-cluster-secret-0123456789' }

export interface ProcessSpec {
  /** 'gateway' (all, workers), or 'origin', 'relay', 'portal' (cluster). */
  role: string
  args: string[]
  /** Written to a JSON file passed with --config. */
  config?: Record<string, unknown>
  /** The port to wait for before starting the next process. */
  port: number
  /** Relay worker processes it forks. */
  workers: number
}

/**
 * What to start for `layout`, in order; the last one is where clients connect. `extra` settings go
 * to the process clients connect to (the gateway, or the cluster's portal).
 */
export function layoutProcesses (
  layout: LayoutName,
  ports: { front: number, relay: number, origin: number },
  extra: Record<string, unknown> = {}
): ProcessSpec[] {
  if (layout === 'all' || layout === 'workers') {
    const workers = layout === 'all' ? 0 : 2
    return [
      {
        role: 'gateway',
        args: [],
        config: { ...FUZZED_SETTINGS, port: ports.front, workers, ...extra },
        port: ports.front,
        workers
      }
    ]
  }
  return [
    {
      role: 'origin',
      args: ['origin', '--port', String(ports.origin), '--host', '127.0.0.1'],
      port: ports.origin,
      workers: 0
    },
    {
      role: 'relay',
      args: ['relay'],
      config: {
        ...FUZZED_SETTINGS,
        port: ports.relay,
        workers: 0,
        backends: [`rtsp://127.0.0.1:${ports.origin}`],
        cluster: { ...CLUSTER_SHARED }
      },
      port: ports.relay,
      workers: 0
    },
    {
      role: 'portal',
      args: ['portal'],
      config: {
        ...FUZZED_SETTINGS,
        port: ports.front,
        cluster: { ...CLUSTER_SHARED, relays: [`127.0.0.1:${ports.relay}`], probeIntervalMs: 1000 },
        ...extra
      },
      port: ports.front,
      workers: 0
    }
  ]
}
