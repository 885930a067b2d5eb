/**
 * The verifying side of portal → relay trust, at a relay node's front door: every connection a
 * portal forwards starts with a preamble line carrying its proof (forward-proof.ts), stripped here
 * before anything parses the leg; a leg is then believed (client address, token path, user) only
 * when the proof is for that very leg (kind and cookie). Cluster reads carry the proof in a header.
 * Whatever fails is refused, logged and counted (TG_ERR_RELAY_UNTRUSTED,
 * tunnelgate_relay_untrusted_total{reason}); the proof itself is never logged.
 */
import { refuseConnection } from '../tunnel/refuse.js'
import type net from 'node:net'
import type { Logger } from 'pino'
import type { GatewayMetrics } from '../core/metrics.js'
import { buildHttpError, type HttpHead } from '../tunnel/codec/http-head.js'
import { getHeader } from '../tunnel/codec/rtsp-message.js'
import { PAIR_HEADER } from '../route/relay.js'
import {
  NonceWindow, PREAMBLE, PROOF_MAX_CHARS, verifyForward, type ForwardClaims, type ForwardKind
} from '../tunnel/codec/forward-proof.js'

export type Preamble =
  | { state: 'incomplete' }
  /** No preamble: the connection is not a forwarded leg (a probe, a cluster read, or a stranger). */
  | { state: 'none' }
  | { state: 'refused' }
  | { state: 'signed', claims: ForwardClaims, rest: Buffer }

export interface ForwardTrustOptions {
  /** cluster.secret and cluster.acceptSecrets. */
  secrets: string[]
  maxClockSkewMs: number
  maxNonces: number
}

type Refusal = 'missing' | 'malformed' | 'bad-signature' | 'stale' | 'replayed' | 'mismatch' | 'nonces-full'

const PREAMBLE_BYTES = Buffer.from(PREAMBLE, 'latin1')
const PREAMBLE_MAX = PREAMBLE.length + PROOF_MAX_CHARS + 2
const RTSP_FORBIDDEN = 'RTSP/1.0 403 Forbidden\r\nConnection: close\r\n\r\n'

export class ForwardTrust {
  readonly #opts: ForwardTrustOptions
  readonly #metrics: GatewayMetrics
  readonly #log: Logger
  readonly #now: () => number
  readonly #nonces: NonceWindow

  constructor (opts: ForwardTrustOptions, metrics: GatewayMetrics, logger: Logger, now: () => number = Date.now) {
    this.#opts = opts
    this.#metrics = metrics
    this.#log = logger
    this.#now = now
    this.#nonces = new NonceWindow(opts.maxNonces, 2 * opts.maxClockSkewMs)
  }

  /** The preamble at the start of `buf` (what a connection sent so far), verified and stripped. */
  takePreamble (buf: Buffer, from: string): Preamble {
    const n = Math.min(buf.length, PREAMBLE_BYTES.length)
    if (buf.compare(PREAMBLE_BYTES, 0, n, 0, n) !== 0) return { state: 'none' }
    const nl = buf.indexOf(0x0a)
    if (nl === -1) {
      if (buf.length <= PREAMBLE_MAX) return { state: 'incomplete' }
      this.#refuse('malformed', from, 'preamble')
      return { state: 'refused' }
    }
    const proof = buf.toString('latin1', PREAMBLE_BYTES.length, nl).replace(/\r$/, '')
    const claims = this.#verify(proof, from, 'preamble')
    return claims === null ? { state: 'refused' } : { state: 'signed', claims, rest: buf.subarray(nl + 1) }
  }

  /**
   * The claims of a leg's proof when they are for this leg (its kind; for a GET or POST its cookie;
   * a POST with the pair hand-shake header needs a 'post-ask' proof, one without it a 'post' proof).
   * Otherwise the leg is answered 403 (RTSP 403 for plain RTSP), refused and counted: null.
   */
  accept (
    socket: net.Socket, proof: ForwardClaims | null, leg: 'get' | 'post' | 'rtsp' | 'websocket',
    cookie: string | undefined, head: HttpHead | null, from: string
  ): ForwardClaims | null {
    const kind: ForwardKind = leg === 'post' && head !== null && getHeader(head, PAIR_HEADER) !== undefined
      ? 'post-ask'
      : leg
    const why: Refusal | null = proof === null
      ? 'missing'
      : proof.kind !== kind || ((leg === 'get' || leg === 'post') && proof.cookie !== cookie) ? 'mismatch' : null
    if (why === null) return proof
    this.#refuse(why, from, kind)
    refuseConnection(socket, leg === 'rtsp' ? RTSP_FORBIDDEN : buildHttpError(403, 'Forbidden'))
    return null
  }

  /** A cluster read's proof header: 'missing' (answer as for any unknown path), 'ok' or 'refused'. */
  checkRead (header: string | string[] | undefined, target: string, from: string): 'missing' | 'ok' | 'refused' {
    if (header === undefined) return 'missing'
    if (typeof header !== 'string') { this.#refuse('malformed', from, 'read'); return 'refused' }
    const claims = this.#verify(header, from, 'read')
    if (claims === null) return 'refused'
    if (claims.kind === 'read' && claims.target === target) return 'ok'
    this.#refuse('mismatch', from, 'read')
    return 'refused'
  }

  #verify (proof: string, from: string, what: string): ForwardClaims | null {
    const now = this.#now()
    const v = verifyForward(proof, this.#opts.secrets, now, this.#opts.maxClockSkewMs)
    if (!v.ok) { this.#refuse(v.reason, from, what); return null }
    const seen = this.#nonces.admit(v.claims.nonce, now)
    if (seen === 'fresh') return v.claims
    if (seen === 'full') this.#metrics.limitHitsTotal.inc({ limit: 'cluster.maxNonces' })
    this.#refuse(seen === 'full' ? 'nonces-full' : 'replayed', from, what)
    return null
  }

  #refuse (reason: Refusal, from: string, what: string): void {
    this.#metrics.errorsTotal.inc({ code: 'TG_ERR_RELAY_UNTRUSTED' })
    this.#metrics.relayUntrusted.inc({ reason })
    this.#log.info(
      { event: 'relay-untrusted', code: 'TG_ERR_RELAY_UNTRUSTED', peer: from, leg: what, reason },
      'refused: no valid portal proof'
    )
  }
}
