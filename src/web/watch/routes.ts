/**
 * The browser player on the portal's web surface:
 *
 *   GET /watch                         index: every known stream, linked to its player page
 *   GET /watch/<stream path>           player page (media-stream-library over RTSP-over-WebSocket)
 *   GET /watch-assets/media-stream-library.min.js   the library's browser bundle, from node_modules
 *   GET /watch-assets/player.js        the page's script   } files in src/web/watch-page/,
 *   GET /watch-assets/style.css        the pages' style    } served from disk
 *
 * When gateway authentication is on (`auth.tokenSecrets` or `auth.basic`), a player page needs a
 * token for its stream path in the page URL (`/watch/cam1?token=…`, the parameter named by
 * `auth.tokenQueryParam`; the page passes it on to the WebSocket) or HTTP Basic credentials; without
 * one it is a 401/403 page that says so. The WebSocket checks the token again, and the token's path
 * bounds every RTSP request of the session.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Config } from '../../config/config.js'
import { pathAllowed, verifyToken } from '../../tunnel/codec/access.js'
import type { Gate } from '../../door/gate.js'
import { loadAssets } from '../static-assets.js'

export interface WatchOptions {
  config: Config
  /** Stream paths to list (the configured `watch.streams`, plus the embedded origin's). */
  streams: () => string[]
}

/** Where media-stream-library's browser bundle is (resolved from the package's Node entry). */
export function mediaStreamLibraryBundle (): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('media-stream-library')), 'media-stream-library.min.js')
}

/** A stream path as it may appear in a page: '/' + segments of URL-safe characters. */
const STREAM_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{1,512}$/

export function esc (s: string): string { return s.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`) }

/** HTML list of player links for `streams` (used by /watch and the status page). */
export function watchLinks (streams: readonly string[]): string {
  if (streams.length === 0) return '<p>No streams are listed (set <code>watch.streams</code>).</p>'
  return '<ul class="tg-streams">' + streams.map(s => `<li><a href="/watch${esc(s)}">${esc(s)}</a></li>`).join('') +
    '</ul>'
}

function page (title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><link rel="stylesheet" href="/watch-assets/style.css"></head><body>${body}</body></html>`
}

export function playerPage (config: Config, path: string, token: string | null): string {
  const cfg = JSON.stringify({ path, wsPath: config.websocket.path, token, tokenParam: config.auth.tokenQueryParam })
    .replace(/</g, '\\u003c')
  return page(`${path} · tunnelgate`, `<h1>${esc(path)}</h1>
<div id="stage"><video id="video" autoplay muted playsinline></video></div>
<div id="controls"><button id="play" type="button">Pause</button>
<input id="seek" type="range" min="0" max="0" step="0.1" value="0" hidden aria-label="position">
<span id="time"></span></div>
<p id="status" role="status" data-kind="connecting">Connecting…</p>
<p><a href="/watch">all streams</a></p>
<script src="/watch-assets/media-stream-library.min.js"></script>
<script id="tg-config" type="application/json">${cfg}</script>
<script src="/watch-assets/player.js"></script>`)
}

const WATCH_REFUSALS = {
  401: 'This stream needs a link with a valid token (or a user name and password).',
  403: 'That sign-in is not valid for this stream.',
  429: 'Too many failed sign-ins from here: try again later.',
  503: 'The gateway is busy checking sign-ins: try again in a moment.'
} as const

export async function registerWatch (app: FastifyInstance, opts: WatchOptions, gate: Gate): Promise<void> {
  const { config } = opts
  if (!config.watch.enabled) return
  const bundlePath = mediaStreamLibraryBundle()
  let bundle: Buffer | null = null
  const secrets = config.auth.tokenSecrets
  const gated = gate.enabled

  const html = (reply: FastifyReply, status: number, body: string): FastifyReply =>
    reply.code(status).header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(body)

  app.get('/watch-assets/media-stream-library.min.js', async (_req, reply) => {
    bundle ??= await readFile(bundlePath)
    return reply.type('text/javascript; charset=utf-8').header('Cache-Control', 'public, max-age=86400').send(bundle)
  })
  for (const [name, asset] of loadAssets('watch-page', ['player.js', 'style.css'])) {
    app.get(`/watch-assets/${name}`, async (_req, reply) =>
      reply.type(asset.type).header('Cache-Control', 'no-cache').send(asset.body))
  }
  app.get('/watch', async (_req, reply) => {
    return html(reply, 200, page('Streams · tunnelgate', `<h1>Streams</h1>${watchLinks(opts.streams())}`))
  })
  app.get('/watch/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*']
    const path = '/' + rest
    if (!STREAM_PATH.test(path) || path.split('/').some(s => s === '..' || s === '.')) {
      return html(
        reply, 400,
        page(
          'Bad stream path', '<h1>Bad stream path</h1><p id="status" data-kind="error">That is not a stream path.</p>'
        )
      )
    }
    const q = req.query as Record<string, unknown>
    const given = q[config.auth.tokenQueryParam]
    const token = typeof given === 'string' && given !== '' ? given : null
    if (gated) {
      const refused = (
        status: number, why: string, headers: ReadonlyArray<readonly [string, string]> = []
      ): FastifyReply => {
        if (status === 401 && gate.basic.enabled) {
          void reply.header('WWW-Authenticate', `Basic realm="${config.auth.realm}"`)
        }
        for (const [k, v] of headers) if (k.toLowerCase() === 'retry-after') void reply.header(k, v)
        return html(
          reply, status,
          page(`${path} · refused`, `<h1>${esc(path)}</h1><p id="status" data-kind="refused">${esc(why)}</p>`)
        )
      }
      if (token !== null && secrets.length > 0) {
        const v = verifyToken(token, secrets, Date.now() / 1000)
        if (!v.ok) {
          return refused(
            401,
            v.reason === 'expired'
              ? 'This link has expired: ask for a new one.'
              : 'This link is not valid for this gateway.'
          )
        }
        if (!pathAllowed(v.path, path)) return refused(403, `This link is for ${v.path}, not ${path}.`)
      } else {
        const v = await gate.check({
          client: req.ip,
          headers: req.headers.authorization === undefined ? [] : [['Authorization', req.headers.authorization]],
          target: path,
          path,
          transport: 'watch'
        })
        if (!v.ok) return refused(v.status, WATCH_REFUSALS[v.status], v.headers)
      }
    }
    return html(reply, 200, playerPage(config, path, token))
  })
}
