/**
 * The embedded Darwin-style RTSP origin: the gateway's default backend, the tests' backend
 * and the benchmark's backend. See docs/origin.md.
 */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Registry } from 'prom-client'
import { MediaCatalog } from './media-catalog.js'
import { consoleLogger, DEFAULT_MAX_BACKLOG, DEFAULT_SESSION_TIMEOUT_SEC, type OriginOptions } from './options.js'
import { OriginServer } from './server.js'

export type { OriginLogger, OriginOptions } from './options.js'

/** The repository's media/ (src/origin/ and dist/origin/ are both 2 levels down). */
export const DEFAULT_MEDIA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../media')

export interface OriginHandle {
  port: number
  metricsPort?: number
  registry: Registry
  close (): Promise<void>
  /** Names of the servable streams (VOD at /<name>, live at /live/<name>). */
  streams (): string[]
}

export async function startOrigin (opts: OriginOptions): Promise<OriginHandle> {
  const log = opts.logger ?? consoleLogger
  const mediaDir = resolve(opts.mediaDir ?? DEFAULT_MEDIA_DIR)
  const catalog = await MediaCatalog.load(mediaDir, log, opts.maxPayload)
  if (catalog.names().length === 0) log.warn({ mediaDir }, 'origin: no servable media files')
  const server = new OriginServer(catalog, {
    port: opts.port,
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    sessionTimeoutSec: opts.sessionTimeoutSec ?? DEFAULT_SESSION_TIMEOUT_SEC,
    stamp: opts.stampPayloads === true,
    maxBacklog: opts.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG,
    log
  })
  try { await server.start() } catch (err) {
    await server.close().catch(() => {})
    await catalog.close()
    throw err
  }
  log.info(
    { port: server.port, metricsPort: server.metricsPort, mediaDir, streams: catalog.names() }, 'origin: listening'
  )
  let closing: Promise<void> | undefined
  const handle: OriginHandle = {
    port: server.port,
    registry: server.metrics.registry,
    streams: () => catalog.names(),
    close: () => {
      closing ??= server.close().then(() => catalog.close())
      return closing
    }
  }
  if (server.metricsPort !== undefined) handle.metricsPort = server.metricsPort
  return handle
}
