/**
 * What cluster members read from each other over a relay node's tunnel port: `/status/summary`
 * (a portal's status page) and `/metrics` (the relays' `cluster.peers` load). Served only to a
 * request signed with the cluster secret (forward-trust.ts); without a proof the answer is the
 * same 404 as for any unknown path, with a bad one 403 (TG_ERR_RELAY_UNTRUSTED).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RelaySummary } from '../route/relay-view.js'
import { FORWARD_HEADER } from '../tunnel/codec/forward-proof.js'
import type { ForwardTrust } from '../door/forward-trust.js'
import type { StatusSource } from './web.js'

export const CLUSTER_READS = ['/metrics', '/status/summary'] as const

export function registerClusterReads (
  app: FastifyInstance,
  d: { trust: ForwardTrust, source: StatusSource, summaries: () => Promise<RelaySummary[]>, contentType: string }
): void {
  const signed = (path: string) => async (
    req: FastifyRequest, reply: FastifyReply
  ): Promise<FastifyReply | undefined> => {
    const v = d.trust.checkRead(req.headers[FORWARD_HEADER.toLowerCase()], `GET ${path}`, req.ip)
    if (v === 'missing') { reply.callNotFound(); return reply }
    if (v === 'refused') {
      return await reply.code(403).send({
        error: { code: 'TG_ERR_RELAY_UNTRUSTED', message: 'no valid cluster proof' }
      })
    }
    return undefined
  }
  app.get(
    '/metrics', { onRequest: signed('/metrics') },
    async (_req, reply) => reply.type(d.contentType).send(await d.source.metricsText())
  )
  app.get('/status/summary', { onRequest: signed('/status/summary') }, async () => ({ relays: await d.summaries() }))
}
