/**
 * Stream path → route (pure). The longest route prefix that matches on a segment boundary wins;
 * a path no route matches gets 404 and nothing is dialled.
 */
import type { RouteConfig } from '../config/config.js'
import { canonicalPath, parseRtspUrl } from '../tunnel/codec/rtsp-url.js'

export interface ResolvedRoute {
  route: RouteConfig
  /** Path on the backend (the route's backendPath replacing its public prefix). */
  backendPath: string
  /** Public prefix that was matched (for URL mapping). */
  publicPrefix: string
  backendPrefix: string
}

export function matchesPrefix (path: string, prefix: string): boolean {
  if (prefix === '/') return path.startsWith('/')
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  return path === p || path.startsWith(p + '/')
}

export function resolveRoute (routes: readonly RouteConfig[], path: string): ResolvedRoute | null {
  let best: RouteConfig | null = null
  for (const r of routes) {
    if (!matchesPrefix(path, r.path)) continue
    if (best === null || r.path.length > best.path.length) best = r
  }
  if (best === null) return null
  const publicPrefix = best.path === '/' ? '' : best.path.replace(/\/$/, '')
  const backendPrefix = best.backendPath === undefined
    ? publicPrefix
    : (best.backendPath === '/' ? '' : best.backendPath.replace(/\/$/, ''))
  return { route: best, backendPath: backendPrefix + path.slice(publicPrefix.length), publicPrefix, backendPrefix }
}

/**
 * Canonical path of an rtsp:// URL or of an absolute path, without query (rtsp-url.ts
 * canonicalPath: `/live//demo` and `/live/./demo` are `/live/demo`); null when it is neither or
 * when `..` climbs out of the root.
 */
export function pathOfUrl (url: string): string | null {
  if (url.startsWith('/')) return canonicalPath(url.split(/[?#]/)[0]!)
  const r = parseRtspUrl(url)
  return r.ok ? canonicalPath(r.url.path) : null
}
