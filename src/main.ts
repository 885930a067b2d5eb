/**
 * Process entry: parse the command line, load the config, start the role, handle signals.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { buildConfig, envOverrides, loadConfigFile } from './config/config.js'
import { parseCli, USAGE } from './cli.js'
import { TunnelgateError } from './core/errors.js'
import { startGateway } from './gateway.js'
import { startOrigin } from './origin/index.js'
import { hashPassword } from './door/auth.js'
import { trackTimersIfAsked } from './core/timer-census.js'
import { installFaultsFromEnv } from './core/containment.js'
import { createLogger } from './core/logger.js'

async function main (argv: string[]): Promise<void> {
  trackTimersIfAsked()
  installFaultsFromEnv(process.env)
  if (argv[0] === 'bench') process.exit(await runBenchPackage(argv.slice(1)))
  if (argv[0] === 'token') {
    // Mint an access token (src/ops/token-cli.ts): the secret from the environment or stdin.
    const { tokenMain } = await import('./ops/token-cli.js')
    await tokenMain(argv.slice(1), {
      env: process.env, stdin: process.stdin, out: s => process.stdout.write(s), err: s => process.stderr.write(s)
    })
    return
  }
  const cli = parseCli(argv, process.env)
  if (cli.help) { process.stdout.write(USAGE + '\n'); return }
  const logger = createLogger(process.env.TUNNELGATE_LOG_LEVEL ?? 'info')

  if (cli.role === 'hash-password') {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) chunks.push(c as Buffer)
    const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
    if (password === '') {
      throw new TunnelgateError('TG_ERR_CFG_INVALID', 'hash-password: give the password on standard input')
    }
    process.stdout.write(hashPassword(password) + '\n')
    return
  }
  if (cli.role === 'origin') {
    const origin = await startOrigin({ ...cli.origin, logger })
    logger.info(
      { port: origin.port, metricsPort: origin.metricsPort, streams: origin.streams() },
      `origin listening on rtsp://${cli.origin.host}:${origin.port}/`
    )
    onSignals(async () => { await origin.close() }, logger)
    return
  }

  const fileLayer = cli.configFile === undefined ? {} : loadConfigFile(cli.configFile)
  const envLayer = envOverrides(process.env)
  // Validate once without the origin, so bad settings are reported before anything starts.
  let config = buildConfig([fileLayer, envLayer, cli.layer])
  let origin: Awaited<ReturnType<typeof startOrigin>> | null = null
  if (config.backends.length === 0 && config.role !== 'portal') {
    if (config.role === 'relay') {
      throw new TunnelgateError('TG_ERR_CFG_INVALID', 'a relay needs at least one --backend rtsp://HOST:PORT')
    }
    if (!config.origin.enabled) {
      throw new TunnelgateError(
        'TG_ERR_CFG_INVALID',
        'no backend configured and the embedded origin is disabled: give --backend rtsp://HOST:PORT'
      )
    }
    origin = await startOrigin({
      port: config.origin.port,
      host: config.origin.host,
      logger: logger.child({ component: 'origin' }),
      metricsPort: 0,
      ...(config.origin.mediaDir === undefined ? {} : { mediaDir: config.origin.mediaDir })
    })
    config = buildConfig(
      [fileLayer, envLayer, cli.layer, {
        backends: [{ name: 'origin', url: `rtsp://${config.origin.host}:${origin.port}` }],
        watch: { streams: [...config.watch.streams, ...origin.streams().flatMap(n => [`/${n}`, `/live/${n}`])] }
      }]
    )
  }
  // Reload (SIGHUP, POST /admin/reload): the same sources read again; the embedded origin stays the backend.
  const configFile = cli.configFile
  const originUrl = origin === null ? null : `rtsp://${config.origin.host}:${origin.port}`
  const loadConfig = configFile === undefined
    ? undefined
    : () => buildConfig(
        [
          loadConfigFile(configFile), envOverrides(process.env), cli.layer,
          ...(originUrl === null ? [] : [{ backends: [{ name: 'origin', url: originUrl }] }])
        ]
      )
  const gateway = await startGateway(config, {
    logger: logger.child({ component: 'gateway' }), ...(loadConfig === undefined ? {} : { loadConfig })
  })
  process.on('SIGHUP', () => {
    gateway.reload().then(
      r => logger.info({ event: 'sighup', ...r }, 'SIGHUP: config reloaded'),
      err => logger.error({ event: 'sighup', err: (err as Error).message }, 'SIGHUP: config not reloaded'))
  })
  if (origin !== null) printDemoCommands(config.host, gateway.port, config.ops.host, gateway.opsPort, origin.streams())
  onSignals(async () => {
    // A relay node drains first: portals see it on /healthz and send it no new tunnels, its own go on.
    if (config.role === 'relay' && config.cluster.drainTimeoutMs > 0) await gateway.drain(config.cluster.drainTimeoutMs)
    await gateway.close(config.tunnel.shutdownGraceMs)
    if (origin !== null) await origin.close()
  }, logger)
}

/**
 * `tunnelgate bench`: the benchmark is a package of its own (bench/ in a checkout, not published);
 * this runs its entry as a child process and exits with its status.
 */
async function runBenchPackage (args: string[]): Promise<number> {
  const entry = fileURLToPath(new URL('../bench/dist/main.js', import.meta.url))
  if (!existsSync(entry)) {
    const checkout = existsSync(fileURLToPath(new URL('../bench/package.json', import.meta.url)))
    throw new TunnelgateError('TG_ERR_CFG_INVALID', checkout
      ? 'bench: the bench package is not built: run `npm run build:bench` (or `npm run bench`)'
      : 'bench: the benchmark is not part of the installed package; run it from a checkout (docs/benchmarks.md)')
  }
  const child = spawn(process.execPath, [entry, ...args], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig))
  return await new Promise(resolve => child.once('exit', code => resolve(code ?? 1)))
}

function printDemoCommands (host: string, port: number, opsHost: string, opsPort: number, streams: string[]): void {
  const local = (a: string): string => a === '0.0.0.0' || a === '::' ? '127.0.0.1' : a
  const h = local(host)
  const o = local(opsHost)
  const vod = streams.includes('demo') ? 'demo' : (streams[0] ?? 'demo')
  const lines = [
    '',
    `tunnelgate is serving the demo media through the RTSP-over-HTTP tunnel on port ${port}:`,
    `  ffplay -rtsp_transport http rtsp://${h}:${port}/${vod}`,
    `  ffplay -rtsp_transport http rtsp://${h}:${port}/live/${vod}`,
    `  vlc --rtsp-http --rtsp-http-port=${port} rtsp://${h}:${port}/${vod}`,
    `  gst-launch-1.0 playbin uri=rtsph://${h}:${port}/${vod}`,
    `Streams: ${streams.map(s => '/' + s).join(' ')}   Browser: http://${h}:${port}/watch`,
    `Status page: http://${o}:${opsPort}/   Metrics: http://${o}:${opsPort}/metrics   (the ops listener, not on ` +
      `port ${port})`,
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

function onSignals (stop: () => Promise<void>, logger: Logger): void {
  let stopping = false
  const handler = (sig: string): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal: sig }, 'draining and stopping')
    stop().then(() => process.exit(0), err => { logger.error({ err }, 'error while stopping'); process.exit(1) })
  }
  process.on('SIGTERM', () => handler('SIGTERM'))
  process.on('SIGINT', () => handler('SIGINT'))
}

main(process.argv.slice(2)).catch(err => {
  if (TunnelgateError.is(err)) { process.stderr.write(`tunnelgate: ${err.message}\n`) } else {
    process.stderr.write(`tunnelgate: unexpected error: ${(err as Error).stack ?? String(err)}\n`)
  }
  process.exit(1)
})
