/** RTSP backends after the schema: the URL checked and normalised to rtsp://host:port, the name filled in. */
import type { Static } from '@sinclair/typebox'
import { fail } from './refuse.js'
import type { BackendConfig, ConfigSchema } from './schema.js'

type DeclaredBackend = Static<typeof ConfigSchema>['backends'][number]

export function parseBackendUrl (raw: string, key: string): { host: string, port: number } {
  let u: URL
  try { u = new URL(raw) } catch { fail(key, `is not a URL: '${raw}'`) }
  if (u.protocol !== 'rtsp:') fail(key, `must be an rtsp:// URL (got '${raw}')`)
  if (!u.hostname) fail(key, `has no host: '${raw}'`)
  if (u.pathname !== '/' && u.pathname !== '') fail(key, `must not have a path (routes map paths): '${raw}'`)
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 554 : Number(u.port) }
}

/** '' or an http(s):// URL. */
export function checkHttpUrl (v: string, key: string): void {
  if (v === '') return
  let u: URL
  try { u = new URL(v) } catch { fail(key, `is not a URL: '${v}'`) }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(key, `must be an http:// or https:// URL (got '${v}')`)
}

export function normaliseBackends (backends: DeclaredBackend[]): BackendConfig[] {
  const names = new Set<string>()
  return backends.map((b, i) => {
    const key = `backends[${i}]`
    const { host, port } = parseBackendUrl(b.url, `${key}.url`)
    checkHttpUrl(b.metricsUrl, `${key}.metricsUrl`)
    const name = b.name ?? `${host}:${port}`
    if (names.has(name)) fail(`${key}.name`, `duplicates the name '${name}'`)
    names.add(name)
    const { maxSessions, weight, maxBandwidth, metricsUrl, metricsSessions, metricsBytes } = b
    const url = `rtsp://${host.includes(':') ? `[${host}]` : host}:${port}`
    return { name, url, maxSessions, weight, maxBandwidth, metricsUrl, metricsSessions, metricsBytes }
  })
}
