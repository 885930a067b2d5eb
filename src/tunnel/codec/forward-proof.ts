/**
 * The proof a portal sends with what it forwards to a relay node (pure; the clock is passed in).
 *
 *   tgf1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "tgf1.<base64url(JSON claims)>"))>
 *
 * The claims are everything the relay node believes instead of checking it itself: the client's
 * address, the stream path a token bound the leg to, the gateway-authenticated user, the leg's kind
 * and cookie (a cluster read: its method and path), a timestamp and a random nonce. The MAC covers
 * the exact bytes of the encoded claims, so nothing is canonicalised. A proof is refused when it is
 * malformed, signed with none of the secrets, older or newer than the allowed skew, or (NonceWindow)
 * seen before within the window.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * What a proof is for: a tunnel GET, a POST, a POST asking "is this cookie's GET yours?", a WebSocket, plain RTSP, or a
 * cluster read.
 */
export type ForwardKind = 'get' | 'post' | 'post-ask' | 'websocket' | 'rtsp' | 'read'
const KINDS: ReadonlySet<string> = new Set<ForwardKind>(['get', 'post', 'post-ask', 'websocket', 'rtsp', 'read'])

export interface ForwardClaims {
  kind: ForwardKind
  /** The client address as the portal saw it ('' for a cluster read). */
  client: string
  /** The stream path a token bound the leg to. */
  path?: string
  /** The gateway-authenticated user. */
  user?: string
  /** The leg's x-sessioncookie (get, post, post-ask). */
  cookie?: string
  /** A cluster read's "METHOD /path". */
  target?: string
  /** Epoch ms when it was signed. */
  ts: number
  /** Unique per proof (replays are refused). */
  nonce: string
}

export type ForwardVerdict =
  | { ok: true, claims: ForwardClaims }
  | { ok: false, reason: 'malformed' | 'bad-signature' | 'stale' }

/** The line a portal writes first on every connection it forwards to a relay node: PREAMBLE + proof + CRLF. */
export const PREAMBLE = 'TUNNELGATE-FORWARD '
/** The header a cluster read (a relay's /metrics, /status/summary on its tunnel port) carries its proof in. */
export const FORWARD_HEADER = 'X-Tunnelgate-Forward'

const PREFIX = 'tgf1.'
/** Longest proof looked at (a path, a user and a cookie are bounded well below this). */
export const PROOF_MAX_CHARS = 2048
const B64URL = /^[A-Za-z0-9_-]+$/

const mac = (secret: string, body: string): Buffer => createHmac('sha256', secret).update(body).digest()

/** A fresh nonce: 128 random bits. */
export function newNonce (): string { return randomBytes(16).toString('base64url') }

export function signForward (secret: string, claims: ForwardClaims): string {
  const wire: Record<string, unknown> = { k: claims.kind, c: claims.client, ts: claims.ts, n: claims.nonce }
  if (claims.path !== undefined) wire.p = claims.path
  if (claims.user !== undefined) wire.u = claims.user
  if (claims.cookie !== undefined) wire.s = claims.cookie
  if (claims.target !== undefined) wire.t = claims.target
  const body = PREFIX + Buffer.from(JSON.stringify(wire)).toString('base64url')
  return `${body}.${mac(secret, body).toString('base64url')}`
}

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max

/** Verify `proof` against any of `secrets` at `nowMs`, allowing `maxSkewMs` either way. */
export function verifyForward (
  proof: string, secrets: readonly string[], nowMs: number, maxSkewMs: number
): ForwardVerdict {
  if (proof.length > PROOF_MAX_CHARS || !proof.startsWith(PREFIX)) return { ok: false, reason: 'malformed' }
  const dot = proof.lastIndexOf('.')
  const body = proof.slice(0, dot)
  const sig = proof.slice(dot + 1)
  const payload = body.slice(PREFIX.length)
  if (dot <= PREFIX.length || !B64URL.test(payload) || !B64URL.test(sig)) return { ok: false, reason: 'malformed' }
  const given = Buffer.from(sig, 'base64url')
  if (!secrets.some(s => {
    const want = mac(s, body)
    return want.length === given.length && timingSafeEqual(want, given)
  })) { return { ok: false, reason: 'bad-signature' } }
  let w: Record<string, unknown>
  try {
    w = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
  } catch { return { ok: false, reason: 'malformed' } }
  if (w === null || typeof w !== 'object' || !str(w.k, 16) || !KINDS.has(w.k) || !str(w.c, 64) ||
      typeof w.ts !== 'number' || !Number.isFinite(w.ts) || !str(w.n, 64) || w.n.length < 16) {
    return { ok: false, reason: 'malformed' }
  }
  for (const k of ['p', 'u', 's', 't'] as const) {
    if (w[k] !== undefined && !str(w[k], 1024)) return { ok: false, reason: 'malformed' }
  }
  if (Math.abs(nowMs - w.ts) > maxSkewMs) return { ok: false, reason: 'stale' }
  return {
    ok: true,
    claims: {
      kind: w.k as ForwardKind,
      client: w.c,
      ts: w.ts,
      nonce: w.n,
      ...(w.p === undefined ? {} : { path: w.p as string }),
      ...(w.u === undefined ? {} : { user: w.u as string }),
      ...(w.s === undefined ? {} : { cookie: w.s as string }),
      ...(w.t === undefined ? {} : { target: w.t as string })
    }
  }
}

/**
 * The nonces of the proofs accepted within the last `windowMs` (twice the allowed skew: a proof is
 * acceptable that long), at most `maxEntries` of them. Entries are kept in arrival order, so the
 * expired ones are always at the front.
 */
export class NonceWindow {
  readonly #seen = new Map<string, number>()
  constructor (readonly maxEntries: number, readonly windowMs: number) {}

  get size (): number { return this.#seen.size }

  /** 'fresh' (now remembered), 'replayed' (seen within the window) or 'full' (no room: refuse). */
  admit (nonce: string, nowMs: number): 'fresh' | 'replayed' | 'full' {
    for (const [n, until] of this.#seen) {
      if (until > nowMs) break
      this.#seen.delete(n)
    }
    if (this.#seen.has(nonce)) return 'replayed'
    if (this.#seen.size >= this.maxEntries) return 'full'
    this.#seen.set(nonce, nowMs + this.windowMs)
    return 'fresh'
  }
}
