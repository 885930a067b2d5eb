/**
 * Viewer affinity on HTTP routes: a viewer's playlist and segment requests stay on one backend.
 * A viewer is its affinity cookie (`<32 hex random id>.<the backend's index in the route's list>`:
 * opaque, it never names a backend, whose default name is its address), or, for a client that
 * keeps no cookie (or its first request), its address + User-Agent on that route. That key only
 * balances; it never stands for a credential. Viewers are remembered for `httpProxy.viewerIdleMs`,
 * at most `httpProxy.maxViewers` of them (the longest unseen forgotten first).
 */
import { randomBytes } from 'node:crypto'
import type { HttpRouteConfig } from '../config/http-routes.js'

export interface Affinity {
  /** 32 hex digits. */
  id: string
  /** The backend's index in the route's list. */
  slot: number
}

/** The affinity cookie's value: `<32 hex id>.<slot>`, else null. */
export function parseAffinity (value: string | undefined): Affinity | null {
  const m = value === undefined ? null : /^([0-9a-f]{32})\.(\d{1,4})$/.exec(value)
  return m === null ? null : { id: m[1]!, slot: Number(m[2]) }
}

export function formatAffinity (a: Affinity): string {
  return `${a.id}.${a.slot}`
}

/** A fresh viewer id for the cookie. */
export function newViewerId (): string {
  return randomBytes(16).toString('hex')
}

export interface Viewer {
  /** The backend it is on ('' before its first choice). */
  backend: string
  route: string
  lastSeen: number
  /** The id in this viewer's affinity cookie. */
  cookieId: string
  /** Forgotten (expired or evicted) while a request of it was still in flight. */
  gone?: boolean
}

/**
 * The Set-Cookie value that ties `viewer` to its backend on `route`, or null when the request
 * already carried that value (`sent`).
 */
export function affinityCookie (
  name: string, viewer: Viewer, route: HttpRouteConfig, sent: string | null
): string | null {
  const value = formatAffinity({ id: viewer.cookieId, slot: route.backends.findIndex(b => b.name === viewer.backend) })
  return value === sent ? null : `${name}=${value}; Path=${route.path}; HttpOnly; SameSite=Lax`
}

/** The backend a request asks for: its viewer's, else the one its cookie's slot names on `route`. */
export function wantedBackend (
  viewer: Viewer | undefined, affinity: Affinity | null, route: HttpRouteConfig
): string | undefined {
  return viewer?.backend ?? (affinity === null ? undefined : route.backends[affinity.slot]?.name)
}

export interface ViewerTableOptions {
  maxViewers: number
  idleMs: number
  /** A backend gained (+1) or lost (-1) a viewer. */
  count: (backend: string, delta: 1 | -1) => void
}

/** The viewers remembered by this portal process, in last-seen order. */
export class ViewerTable {
  readonly #viewers = new Map<string, Viewer>()
  readonly #o: ViewerTableOptions

  constructor (o: ViewerTableOptions) { this.#o = o }

  get size (): number { return this.#viewers.size }

  /**
   * The viewer a request on `route` is: its cookie's when it carries one (taking over the address
   * key its first request was remembered by), else its address + User-Agent's.
   */
  find (
    route: string, affinity: Affinity | null, client: string, userAgent: string
  ): { key: string, viewer: Viewer | undefined } {
    const addrKey = `a:${client}|${userAgent.slice(0, 200)}|${route}`
    if (affinity === null) return { key: addrKey, viewer: this.#viewers.get(addrKey) }
    const key = `c:${affinity.id}|${route}`
    let viewer = this.#viewers.get(key)
    if (viewer === undefined) {
      const a = this.#viewers.get(addrKey)
      if (a !== undefined && a.cookieId === affinity.id) {
        this.#viewers.delete(addrKey)
        this.#viewers.set(key, a)
        viewer = a
      }
    }
    return { key, viewer }
  }

  /** Seen now: moved to the end of the last-seen order, or remembered (evicting the oldest past maxViewers). */
  touch (key: string, viewer: Viewer | undefined, route: string, now: number, cookieId: string): Viewer {
    if (viewer !== undefined) {
      viewer.lastSeen = now
      this.#viewers.delete(key)
      this.#viewers.set(key, viewer)
      return viewer
    }
    const v: Viewer = { backend: '', route, lastSeen: now, cookieId }
    this.#viewers.set(key, v)
    while (this.#viewers.size > this.#o.maxViewers) {
      const [oldKey, old] = this.#viewers.entries().next().value as [string, Viewer]
      this.#forget(oldKey, old)
    }
    return v
  }

  /** `viewer` is on `backend` from now on. */
  assign (viewer: Viewer, backend: string): void {
    if (viewer.backend === backend) return
    if (viewer.gone === true) { viewer.backend = backend; return }
    if (viewer.backend !== '') this.#o.count(viewer.backend, -1)
    viewer.backend = backend
    this.#o.count(backend, 1)
  }

  /** Forget the viewers unseen for idleMs. */
  expire (now: number): void {
    for (const [k, v] of this.#viewers) {
      if (now - v.lastSeen < this.#o.idleMs) break // insertion order = last-seen order
      this.#forget(k, v)
    }
  }

  #forget (key: string, v: Viewer): void {
    this.#viewers.delete(key)
    v.gone = true
    if (v.backend !== '') this.#o.count(v.backend, -1)
  }
}
