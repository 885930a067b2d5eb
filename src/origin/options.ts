/** Options and logger shape of the embedded origin (see docs/origin.md). */
export interface OriginLogger {
  info (o: object, msg?: string): void
  warn (o: object, msg?: string): void
  error (o: object, msg?: string): void
}

export interface OriginOptions {
  /** RTSP port; 0 = ephemeral (the real one is returned). */
  port: number
  host?: string
  /** Media directory (default: the repository's media/). */
  mediaDir?: string
  /** Prometheus /metrics port: 0 = ephemeral, undefined = no metrics server. */
  metricsPort?: number
  /** RTSP session timeout in seconds (default 60). */
  sessionTimeoutSec?: number
  logger?: OriginLogger
  /** Bench hook: stamp each RTP packet with its send time (monotonic ns, profile 0x544E) in an RTP header extension. */
  stampPayloads?: boolean
  /** Cap on a TCP viewer's unsent bytes before VOD waits / live drops (default 4 MiB). */
  maxBacklogBytes?: number
  /** Largest RTP payload (default 1400). */
  maxPayload?: number
}

export const DEFAULT_SESSION_TIMEOUT_SEC = 60
export const DEFAULT_MAX_BACKLOG = 4 * 1024 * 1024

export const consoleLogger: OriginLogger = {
  info: (o, msg) => console.log(JSON.stringify({ level: 'info', msg, ...o })),
  warn: (o, msg) => console.warn(JSON.stringify({ level: 'warn', msg, ...o })),
  error: (o, msg) => console.error(JSON.stringify({ level: 'error', msg, ...o }))
}
