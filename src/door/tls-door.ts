/**
 * Optional TLS front door (`tls.cert` + `tls.key`, port `tls.port`, 443 by default): a tls.Server
 * whose decrypted connections go through the same connection handler as the plain port, so the
 * QuickTime tunnel (`ffmpeg -rtsp_transport https`, `rtsph`-style clients), RTSP over WebSocket
 * (`wss://`) and the web surface (`https://…/watch/…`) all work on it.
 *
 * A TLS connection cannot be handed to another process (its TLS state lives here), so with local
 * workers its legs are served by this process's own relay; a portal forwards them decrypted to
 * relay nodes as usual.
 */
import { readFileSync } from 'node:fs'
import tls from 'node:tls'
import type net from 'node:net'
import { TunnelgateError } from '../core/errors.js'
import { createFrontDoor, type FrontDoorDeps } from './front-door.js'

export interface TlsFiles { cert: string, key: string }

/** Read and check the PEM files; a coded error naming the file when they are unusable. */
export function loadTlsContext (files: TlsFiles): { cert: Buffer, key: Buffer } {
  const read = (what: 'cert' | 'key'): Buffer => {
    try { return readFileSync(files[what]) } catch (err) {
      throw new TunnelgateError(
        'TG_ERR_TLS_CONFIG', `tls.${what}: cannot read '${files[what]}': ${(err as Error).message}`,
        { file: files[what] }
      )
    }
  }
  const cert = read('cert')
  const key = read('key')
  try { tls.createSecureContext({ cert, key }) } catch (err) {
    throw new TunnelgateError(
      'TG_ERR_TLS_CONFIG',
      `tls: '${files.cert}' and '${files.key}' are not a usable certificate and key: ${(err as Error).message}`
    )
  }
  return { cert, key }
}

/**
 * A tls.Server (not listening yet, `context` from loadTlsContext) feeding decrypted connections to a front door built
 * from `deps`.
 */
export function createTlsFrontDoor (deps: FrontDoorDeps, context: { cert: Buffer, key: Buffer }): tls.Server {
  const { cert, key } = context
  const inner = createFrontDoor(deps)
  const server = tls.createServer({ cert, key, handshakeTimeout: deps.config.limits.headerTimeoutMs })
  server.on('secureConnection', socket => { inner.emit('connection', socket as net.Socket) })
  server.on('tlsClientError', (err, socket) => {
    deps.metrics.errorsTotal.inc({ code: 'TG_ERR_TLS_HANDSHAKE' })
    deps.logger.debug({ err: err.message, client: socket.remoteAddress }, 'TLS handshake failed')
    socket.destroy()
  })
  return server
}
