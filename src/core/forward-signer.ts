/**
 * The signing side of portal → relay trust: a portal signs every leg it forwards (a preamble line
 * before the leg's bytes), and portals and relays sign their cluster reads (a header). A new
 * timestamp and nonce per proof; the secret never leaves this object.
 */
import { FORWARD_HEADER, PREAMBLE, newNonce, signForward, type ForwardClaims } from '../tunnel/codec/forward-proof.js'

export type LegClaims = Omit<ForwardClaims, 'ts' | 'nonce' | 'target'>

export class ForwardSigner {
  readonly #secret: string
  readonly #now: () => number
  constructor (secret: string, now: () => number = Date.now) { this.#secret = secret; this.#now = now }

  /** The line to write before a forwarded leg's first byte. */
  preamble (leg: LegClaims): Buffer {
    return Buffer.from(
      `${PREAMBLE}${signForward(this.#secret, { ...leg, ts: this.#now(), nonce: newNonce() })}\r\n`, 'latin1'
    )
  }

  /** Headers for a cluster read of `path` (GET). */
  readHeaders (path: string): Record<string, string> {
    return {
      [FORWARD_HEADER]: signForward(this.#secret, {
        kind: 'read', client: '', target: `GET ${path}`, ts: this.#now(), nonce: newNonce()
      })
    }
  }
}
