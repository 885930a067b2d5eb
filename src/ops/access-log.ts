/**
 * The access log, in the spirit of Darwin's: one structured JSON line per finished tunnel
 * (client, user agent, path, backend, relay, start, duration, bytes each way, RTP packets, close
 * reason, auth user). Written either through the process logger (stdout, `event: "access"`) or to
 * a file rotated by size (`accessLog.file`, `accessLog.maxBytes`, `accessLog.keep`).
 *
 * Only one process writes a file: relay workers send their records to the portal over IPC.
 */
import { promises as fsp } from 'node:fs'
import type { Logger } from 'pino'
import type { AccessRecord, AccessSink } from '../route/relay-view.js'

export interface AccessLogOptions {
  enabled: boolean
  /** '' = through the logger on stdout. */
  file: string
  maxBytes: number
  keep: number
}

export class AccessLog implements AccessSink {
  readonly #opts: AccessLogOptions
  readonly #log: Logger
  #queue: string[] = []
  #flushing: Promise<void> | null = null
  #size = -1
  #closed = false
  #errors = 0

  readonly #onError: () => void

  constructor (opts: AccessLogOptions, logger: Logger, onError: () => void = () => {}) {
    this.#opts = opts
    this.#log = logger
    this.#onError = onError
  }

  /** Lines that could not be written (file errors). */
  get writeErrors (): number { return this.#errors }

  write (r: AccessRecord): void {
    if (!this.#opts.enabled || this.#closed) return
    if (this.#opts.file === '') {
      this.#log.info({ event: 'access', ...r }, 'access')
      return
    }
    this.#queue.push(JSON.stringify({ time: new Date().toISOString(), ...r }) + '\n')
    if (this.#flushing === null) this.#flushing = this.#flush()
  }

  async #flush (): Promise<void> {
    const file = this.#opts.file
    try {
      while (this.#queue.length > 0) {
        const text = this.#queue.join('')
        this.#queue = []
        if (this.#size < 0) this.#size = await fsp.stat(file).then(s => s.size, () => 0)
        if (this.#size > 0 && this.#size + Buffer.byteLength(text) > this.#opts.maxBytes) await this.#rotate()
        try {
          await fsp.appendFile(file, text)
          this.#size += Buffer.byteLength(text)
        } catch (err) {
          this.#errors++
          this.#onError()
          this.#log.error({ err: (err as Error).message, file }, 'access log: cannot write')
        }
      }
    } finally {
      this.#flushing = null
    }
  }

  /** file → file.1 → … → file.<keep>; the oldest is removed. keep = 0 truncates. */
  async #rotate (): Promise<void> {
    const file = this.#opts.file
    const keep = this.#opts.keep
    if (keep === 0) {
      await fsp.rm(file, { force: true })
    } else {
      await fsp.rm(`${file}.${keep}`, { force: true })
      for (let i = keep - 1; i >= 1; i--) await fsp.rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {})
      await fsp.rename(file, `${file}.1`).catch(() => {})
    }
    this.#size = 0
  }

  /** Wait until every queued line is written. */
  async flush (): Promise<void> {
    while (this.#flushing !== null) await this.#flushing
  }

  async close (): Promise<void> {
    await this.flush()
    this.#closed = true
  }
}
