/**
 * The admin API: JSON over HTTP under /admin on the ops listener (`ops.host`, loopback by default;
 * `ops.token` required when it is not loopback), when `admin.enabled`. The route table below is the
 * single source of both the routes' validation schemas and the OpenAPI description served at
 * /admin/openapi.json.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { TunnelgateError, type ErrorCode } from '../core/errors.js'
import type { GatewayMetrics } from '../core/metrics.js'
import type { Operator } from './control.js'

type Schema = Record<string, unknown>

const errorSchema: Schema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } }
    }
  }
}
const tunnelSchema: Schema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'stable id (not the cookie)' },
    transport: { type: 'string', enum: ['http-tunnel', 'rtsp', 'websocket'] },
    client: { type: 'string' },
    userAgent: { type: 'string' },
    path: { type: 'string' },
    backend: { type: ['string', 'null'] },
    relay: { type: 'string' },
    user: { type: 'string' },
    startedAt: { type: 'integer', description: 'epoch ms' },
    ageMs: { type: 'integer' },
    bytesToClient: { type: 'integer' },
    bytesFromClient: { type: 'integer' },
    rtpPacketsToClient: { type: 'integer' },
    rtpPacketsFromClient: { type: 'integer' }
  }
}
const relaySchema: Schema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['in-process', 'worker', 'remote'] },
    up: { type: 'boolean' },
    draining: { type: 'boolean' },
    tunnels: { type: ['integer', 'null'] },
    bytes: { type: 'integer' }
  }
}
const backendSchema: Schema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    url: { type: 'string' },
    healthy: { type: 'boolean' },
    draining: { type: 'boolean' },
    sessions: { type: 'integer' },
    maxSessions: { type: 'integer' },
    weight: { type: 'integer' },
    load: { type: 'number' },
    bytes: { type: 'integer' }
  }
}
const processSchema: Schema = {
  type: 'object',
  required: ['id', 'kind', 'up'],
  properties: {
    id: {
      type: 'string',
      description: "'portal' (the main process; it also relays when workers: 0) or a worker's relay id (w0, w1, …)"
    },
    kind: { type: 'string', enum: ['portal', 'worker'] },
    up: {
      type: 'boolean',
      description: 'false: a worker slot with no live process (restarting); the figures below are then absent'
    },
    pid: { type: 'integer' },
    fds: { type: ['integer', 'null'], description: 'open file descriptors (/proc/self/fd); null off Linux' },
    handles: {
      type: 'object',
      description: "active handles (process.getActiveResourcesInfo()) grouped: timers ('Timeout'; Node lists only " +
        "timers not unref()'d), TCP sockets and listeners, pipes (IPC, stdio), other; byType has every type Node " +
        "names; allTimers (only with TUNNELGATE_TRACK_TIMERS=1) every armed timer, unref()'d ones too",
      properties: {
        timers: { type: 'integer' },
        allTimers: {
          type: 'integer',
          description: 'every armed timer, unref()\'d ones too, created since the process started counting; present ' +
            'only when the process runs with TUNNELGATE_TRACK_TIMERS=1 (an async hook on every async resource: a ' +
            'diagnostic)'
        },
        tcp: { type: 'integer' },
        pipes: { type: 'integer' },
        other: { type: 'integer' },
        byType: { type: 'object', additionalProperties: { type: 'integer' } }
      }
    },
    rssBytes: { type: 'integer' },
    heapUsedBytes: { type: 'integer' },
    uptimeMs: { type: 'integer' }
  }
}
const drainBody: Schema = {
  type: 'object',
  required: ['draining'],
  additionalProperties: false,
  properties: {
    draining: { type: 'boolean', description: 'true: take no new sessions (open ones stay); false: back in service' }
  }
}
const idParam = (name: string, pattern: string): Schema => ({
  type: 'object', required: [name], properties: { [name]: { type: 'string', pattern, maxLength: 128 } }
})

interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  url: string
  summary: string
  params?: Schema
  body?: Schema
  ok: Schema
  errors: number[]
  handler: (req: FastifyRequest, op: Operator) => Promise<unknown>
}

class HttpError extends Error {
  constructor (readonly status: number, readonly code: ErrorCode, message: string) { super(message) }
}

const ROUTES: RouteSpec[] = [
  {
    method: 'GET',
    url: '/admin/tunnels',
    summary: 'List open tunnels (all relays of this gateway)',
    ok: { type: 'object', properties: { tunnels: { type: 'array', items: tunnelSchema } } },
    errors: [401],
    handler: async (_req, op) => ({ tunnels: await op.tunnels() })
  },
  {
    method: 'GET',
    url: '/admin/tunnels/:id',
    summary: 'One open tunnel',
    params: idParam('id', '^[A-Za-z0-9.\\-]+$'),
    ok: tunnelSchema,
    errors: [400, 401, 404],
    handler: async (req, op) => {
      const id = (req.params as { id: string }).id
      const t = (await op.tunnels()).find(x => x.id === id)
      if (t === undefined) throw new HttpError(404, 'TG_ERR_ADMIN_NOT_FOUND', `no open tunnel '${id}'`)
      return t
    }
  },
  {
    method: 'DELETE',
    url: '/admin/tunnels/:id',
    summary: 'Kick a tunnel: TEARDOWN at its backend, then close the client connections',
    params: idParam('id', '^[A-Za-z0-9.\\-]+$'),
    ok: { type: 'object', properties: { kicked: { type: 'string' } } },
    errors: [400, 401, 404],
    handler: async (req, op) => {
      const id = (req.params as { id: string }).id
      if (!await op.kick(id)) throw new HttpError(404, 'TG_ERR_ADMIN_NOT_FOUND', `no open tunnel '${id}'`)
      return { kicked: id }
    }
  },
  {
    method: 'GET',
    url: '/admin/relays',
    summary: 'Relays (in-process, local workers or remote relay nodes) with health, drain state and tunnels',
    ok: { type: 'object', properties: { relays: { type: 'array', items: relaySchema } } },
    errors: [401],
    handler: async (_req, op) => ({ relays: await op.relays() })
  },
  {
    method: 'PUT',
    url: '/admin/relays/:id/draining',
    summary: 'Drain or undrain a relay: a draining relay keeps its tunnels (their POSTs still reach it) and gets no ' +
      'new ones',
    params: idParam('id', '^[A-Za-z0-9.:\\-\\[\\]]+$'),
    body: drainBody,
    ok: relaySchema,
    errors: [400, 401, 404],
    handler: async (req, op) => {
      const id = (req.params as { id: string }).id
      const { draining } = req.body as { draining: boolean }
      if (!await op.setRelayDraining(id, draining)) {
        throw new HttpError(404, 'TG_ERR_ADMIN_NOT_FOUND', `no relay '${id}' (see GET /admin/relays)`)
      }
      return (await op.relays()).find(r => r.id === id)
    }
  },
  {
    method: 'GET',
    url: '/admin/process',
    summary: 'Per process (the portal and each local relay worker): pid, open file descriptors, active handles by ' +
      'type, RSS and heap used',
    ok: { type: 'object', properties: { processes: { type: 'array', items: processSchema } } },
    errors: [401],
    handler: async (_req, op) => ({ processes: await op.processes() })
  },
  {
    method: 'GET',
    url: '/admin/backends',
    summary: 'Backends with health, drain state, sessions, capacity and the load the balancer sees',
    ok: { type: 'object', properties: { backends: { type: 'array', items: backendSchema } } },
    errors: [401],
    handler: async (_req, op) => ({ backends: await op.backends() })
  },
  {
    method: 'PUT',
    url: '/admin/backends/:name/draining',
    summary: 'Drain or undrain a backend on every relay of this gateway: no new sessions, open ones stay',
    params: idParam('name', '^[A-Za-z0-9_.:\\-\\[\\]]+$'),
    body: drainBody,
    ok: backendSchema,
    errors: [400, 401, 404],
    handler: async (req, op) => {
      const name = (req.params as { name: string }).name
      const { draining } = req.body as { draining: boolean }
      if (!await op.setBackendDraining(name, draining)) {
        throw new HttpError(404, 'TG_ERR_ADMIN_NOT_FOUND', `no backend '${name}' (see GET /admin/backends)`)
      }
      return (await op.backends()).find(b => b.name === name)
    }
  },
  {
    method: 'POST',
    url: '/admin/reload',
    summary: 'Reload the config file (as SIGHUP does) without dropping tunnels',
    ok: {
      type: 'object',
      properties: {
        applied: { type: 'array', items: { type: 'string' } },
        restartRequired: { type: 'array', items: { type: 'string' } },
        backends: { type: 'array', items: { type: 'string' } },
        routes: { type: 'integer' }
      }
    },
    errors: [400, 401, 409, 422],
    handler: async (_req, op) => {
      try { return await op.reload() } catch (err) {
        if (TunnelgateError.is(err) && err.code === 'TG_ERR_CFG_INVALID') {
          throw new HttpError(422, 'TG_ERR_CFG_INVALID', err.message)
        }
        if (TunnelgateError.is(err) && err.code === 'TG_ERR_CFG_RELOAD') {
          throw new HttpError(409, 'TG_ERR_CFG_RELOAD', err.message)
        }
        throw err
      }
    }
  }
]

const STATUS_TEXT: Record<number, string> = {
  400: 'bad request (malformed JSON, wrong types, unknown fields)',
  401: 'missing or wrong bearer token',
  404: 'no such tunnel, relay or backend',
  409: 'reload not possible now',
  422: 'the config file does not validate; nothing changed'
}

/** The OpenAPI 3.1 description, generated from the route table. */
export function openApiDocument (): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of ROUTES) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}')
    const params = r.params === undefined
      ? []
      : Object.entries((r.params.properties as Record<string, Schema>)).map(
        ([name, schema]) => ({ name, in: 'path', required: true, schema })
      )
    const responses: Record<string, unknown> = {
      200: { description: 'OK', content: { 'application/json': { schema: r.ok } } }
    }
    for (const s of r.errors) {
      responses[String(s)] = {
        description: STATUS_TEXT[s] ?? 'error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } }
      }
    }(paths[path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}` +
        `${path.replace(/[{}]/g, '').split('/').map(s => s.charAt(0).toUpperCase() + s.slice(1)).join('')}`,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(r.body !== undefined
        ? { requestBody: { required: r.method !== 'POST', content: { 'application/json': { schema: r.body } } } }
        : {}),
      responses
    }
  }
  paths['/admin/openapi.json'] = {
    get: {
      summary: 'This document',
      operationId: 'getOpenapi',
      responses: {
        200: { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } }
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'tunnelgate admin API',
      version: '1',
      description: 'Operate a running tunnelgate: tunnels, relays, backends, config reload, process resources. ' +
        'Errors are { error: { code, message } } with a TG_ERR_* code.'
    },
    servers: [{ url: '/' }],
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'ops.token (required when ops.host is not loopback)' }
      }
    },
    security: [{ bearer: [] }, {}],
    paths
  }
}

/**
 * The admin routes on the ops listener (src/ops/ops-web.ts), an encapsulated plugin under /admin
 * with its own coded errors; the listener's token guard has already let the request in.
 */
export async function registerAdmin (
  ops: FastifyInstance, deps: { op: Operator, metrics: GatewayMetrics, logger: Logger }
): Promise<void> {
  const { op, metrics } = deps
  const log = deps.logger.child({ component: 'admin' })
  const fail = (reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply => {
    metrics.errorsTotal.inc({ code })
    log.info({ event: 'admin-error', status, code, reason: message }, 'admin request refused')
    return reply.code(status).send({ error: { code, message } })
  }
  await ops.register(async app => {
    app.setErrorHandler((err: Error & { statusCode?: number, validation?: unknown, code?: string }, _req, reply) => {
      if (err instanceof HttpError) return fail(reply, err.status, err.code, err.message)
      if (err.validation !== undefined ||
          (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)) {
        return fail(reply, err.statusCode ?? 400, 'TG_ERR_ADMIN_BAD_REQUEST', err.message)
      }
      log.error({ err }, 'admin request failed')
      return reply.code(500).send({ error: { code: 'TG_ERR_ADMIN_INTERNAL', message: err.message } })
    })
    app.setNotFoundHandler(
      (req, reply) => fail(
        reply, 404, 'TG_ERR_ADMIN_NOT_FOUND',
        `no route ${req.method} ${req.url.slice(0, 200)} (see /admin/openapi.json)`
      )
    )
    const doc = openApiDocument()
    app.get('/openapi.json', async () => doc)
    for (const r of ROUTES) {
      app.route({
        method: r.method,
        url: r.url.slice(ADMIN_PREFIX.length),
        schema: {
          ...(r.params !== undefined ? { params: r.params } : {}), ...(r.body !== undefined ? { body: r.body } : {})
        },
        handler: async (req) => await r.handler(req, op)
      })
    }
  }, { prefix: ADMIN_PREFIX })
}

const ADMIN_PREFIX = '/admin'
