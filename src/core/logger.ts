/**
 * The process logger: pino JSON lines with every line's fields through redactLogFields, so no
 * token, cookie or password reaches a log line whoever wrote it (src/core/redact.ts).
 */
import pino, { type DestinationStream, type Logger } from 'pino'
import { redactLogFields, redactUrl } from './redact.js'

export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    formatters: { log: redactLogFields },
    // Fastify logs requests under `req`: its URL without the query.
    serializers: {
      req: (req: { method?: string, url?: string }) => ({ method: req.method, url: redactUrl(req.url ?? '') })
    }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
