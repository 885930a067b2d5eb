/**
 * Command-line parsing (pure): turns argv into a role and a config layer. The roles and their
 * options are listed once, in USAGE below (what `tunnelgate --help` prints).
 */
import { parseArgs } from 'node:util'
import { TunnelgateError } from './core/errors.js'

export type Role = 'all-in-one' | 'portal' | 'relay' | 'origin' | 'hash-password'

export interface Cli {
  role: Role
  configFile?: string
  /** Settings given on the command line (highest precedence). */
  layer: Record<string, unknown>
  origin: { port: number, host: string, mediaDir?: string, metricsPort?: number }
  help: boolean
}

export const USAGE = `Usage:
  tunnelgate [--port 80] [--host 0.0.0.0] [--workers auto|N] [--backend rtsp://HOST:PORT ...] [--config FILE] [--log-level info]
      All-in-one gateway (one relay worker per CPU core by default; --workers 0 = one process).
      [--tls-cert FILE --tls-key FILE [--tls-port 443]] also serves the tunnel, WebSocket and web pages with TLS.
      [--ops-host 127.0.0.1] [--ops-port 9180]: the ops listener (metrics, status page, admin API; every role).
      With no backend it starts the embedded origin with the demo media.
  tunnelgate portal --port 80 (--relay HOST:PORT ... | --relays dns:NAME:PORT)
      A portal: hashes each tunnel's cookie to a relay node and forwards its legs there.
  tunnelgate relay --port 8081 --backend rtsp://HOST:PORT ... [--peer HOST:PORT ... | --peer dns:NAME:PORT]
      A relay node: accepts the legs portals forward, unwraps them, balances over backends.
  tunnelgate hash-password < password.txt
      Prints a scrypt hash for auth.basic[].hash in the config file.
  tunnelgate token --path /STREAM [--ttl SECONDS | --expires WHEN] [--format hmac|jwt] [--url rtsp://HOST]
      Mints an access token for auth.tokenSecrets; the secret from $TUNNELGATE_TOKEN_SECRET or stdin
      (see tunnelgate token --help).
  tunnelgate origin --port 8554 [--host 127.0.0.1] [--media DIR] [--metrics-port N]
      The embedded Darwin-style RTSP origin on its own.
  tunnelgate bench [--quick] [--out DIR] [--scenarios a,b1,b2,c,d,e,f,scaling,live]
      The benchmark (load generator, HAProxy and raw-relay baselines), from a checkout: runs the bench
      package, bench/ (see tunnelgate bench --help and docs/benchmarks.md).

Environment: PORT / TUNNELGATE_PORT, TUNNELGATE_HOST, TUNNELGATE_BACKENDS (comma list),
TUNNELGATE_LOG_LEVEL, TUNNELGATE_WORKERS, TUNNELGATE_OPS_HOST / _PORT / _TOKEN. See docs/configuration.md.`

function num (v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw new TunnelgateError('TG_ERR_CFG_INVALID', `--${flag} must be a whole number (got '${v}')`)
  return Number(v)
}

export function parseCli (argv: string[], env: NodeJS.ProcessEnv = {}): Cli {
  let role: Role = 'all-in-one'
  let args = argv
  if (args[0] === 'origin' || args[0] === 'portal' || args[0] === 'relay' || args[0] === 'hash-password') {
    role = args[0]
    args = args.slice(1)
  }
  let parsed
  try {
    parsed = parseArgs({
      args,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        backend: { type: 'string', multiple: true, short: 'b' },
        relay: { type: 'string', multiple: true },
        relays: { type: 'string' },
        peer: { type: 'string', multiple: true },
        config: { type: 'string', short: 'c' },
        workers: { type: 'string' },
        'log-level': { type: 'string' },
        media: { type: 'string' },
        'metrics-port': { type: 'string' },
        'no-origin': { type: 'boolean' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-port': { type: 'string' },
        'ops-host': { type: 'string' },
        'ops-port': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    })
  } catch (err) { throw new TunnelgateError('TG_ERR_CFG_INVALID', `${(err as Error).message}\n\n${USAGE}`) }
  const v = parsed.values
  const layer: Record<string, unknown> = {}
  const port = num(v.port, 'port')
  if (role !== 'origin' && role !== 'hash-password') {
    if (role !== 'all-in-one') layer.role = role
    const relays = [...(v.relay ?? []), ...(v.relays === undefined ? [] : [v.relays])]
    if (relays.length > 0) layer.cluster = { relays }
    if (v.peer !== undefined) layer.cluster = { ...(layer.cluster as object ?? {}), peers: v.peer }
    if (port !== undefined) layer.port = port
    if (v.host !== undefined) layer.host = v.host
    if (v.backend !== undefined) layer.backends = v.backend
    const workers = v.workers === 'auto' ? 'auto' : num(v.workers, 'workers')
    if (workers !== undefined) layer.workers = workers
    if (v['log-level'] !== undefined) layer.logLevel = v['log-level']
    if (v['no-origin'] === true) layer.origin = { enabled: false }
    const tlsPort = num(v['tls-port'], 'tls-port')
    if (v['tls-cert'] !== undefined || v['tls-key'] !== undefined || tlsPort !== undefined) {
      layer.tls = {
        ...(v['tls-cert'] === undefined ? {} : { cert: v['tls-cert'] }),
        ...(v['tls-key'] === undefined ? {} : { key: v['tls-key'] }),
        ...(tlsPort === undefined ? {} : { port: tlsPort })
      }
    }
    if (v.media !== undefined) layer.origin = { ...(layer.origin as object ?? {}), mediaDir: v.media }
    const opsPort = num(v['ops-port'], 'ops-port')
    if (v['ops-host'] !== undefined || opsPort !== undefined) {
      layer.ops = {
        ...(v['ops-host'] === undefined ? {} : { host: v['ops-host'] }),
        ...(opsPort === undefined ? {} : { port: opsPort })
      }
    }
  }
  const metricsPort = num(v['metrics-port'], 'metrics-port')
  return {
    role,
    ...(v.config === undefined
      ? (env.TUNNELGATE_CONFIG === undefined ? {} : { configFile: env.TUNNELGATE_CONFIG })
      : { configFile: v.config }),
    layer,
    origin: {
      port: port ?? 8554,
      host: v.host ?? '127.0.0.1',
      ...(v.media === undefined ? {} : { mediaDir: v.media }),
      ...(metricsPort === undefined ? {} : { metricsPort })
    },
    help: v.help === true
  }
}
