/**
 * The reference viewer: a real `ffmpeg -rtsp_transport http` playing the looped live stream through
 * the gateway for the whole run. It must keep playing: its frame count (ffmpeg's -progress output,
 * every 0.5 s) has to advance at least every `stallMs`. A stall is judged on the fuzzer's own clock
 * less the time its event loop was held up (a busy machine delays our reading, not the stream).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import type { LagMeter } from './lag.js'

export interface ViewerFailure { message: string, atMs: number }

export class Viewer {
  readonly #ff: ChildProcess
  readonly #lag: LagMeter
  readonly #stallMs: number
  #frames = 0
  #lastAdvance = 0
  #lagAtAdvance = 0
  #stderr = ''
  #exited: string | null = null
  #stopping = false
  worstGapMs = 0

  private constructor (port: number, lag: LagMeter, stallMs: number) {
    this.#lag = lag
    this.#stallMs = stallMs
    this.#ff = spawn(
      'ffmpeg',
      [
        '-nostdin',
        '-v',
        'error',
        '-rtsp_transport',
        'http',
        '-i',
        `rtsp://127.0.0.1:${port}/live/demo`,
        '-f',
        'null',
        '-',
        '-progress',
        'pipe:1',
        '-stats_period',
        '0.5'
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] }
    )
    this.#ff.stdout!.on('data', (d: Buffer) => {
      for (const m of d.toString().matchAll(/^frame=(\d+)/gm)) {
        const n = Number(m[1])
        if (n <= this.#frames) continue
        const now = Date.now()
        if (this.#lastAdvance !== 0) this.worstGapMs = Math.max(this.worstGapMs, this.#gap(now))
        this.#frames = n
        this.#lastAdvance = now
        this.#lagAtAdvance = this.#lag.totalMs
      }
    })
    this.#ff.stderr!.on('data', (d: Buffer) => { this.#stderr = (this.#stderr + d.toString()).slice(-4000) })
    this.#ff.once('exit', (code, signal) => {
      if (!this.#stopping) this.#exited = signal === null ? `exit code ${code}` : `signal ${signal}`
    })
  }

  /** Start playing; resolves once frames flow (rejects after `startMs`). */
  static async start (port: number, lag: LagMeter, stallMs: number, startMs = 20_000): Promise<Viewer> {
    const v = new Viewer(port, lag, stallMs)
    const deadline = Date.now() + startMs
    while (v.#frames === 0) {
      if (v.#exited !== null || Date.now() > deadline) {
        await v.stop()
        throw new Error(
          `the reference viewer did not start playing (${v.#exited ?? 'timeout'}): ${v.#stderr.slice(-500)}`
        )
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    return v
  }

  get frames (): number { return this.#frames }

  /** Time since the last advance, less the fuzzer's own event-loop delay over that time. */
  #gap (now: number): number {
    return now - this.#lastAdvance - (this.#lag.totalMs - this.#lagAtAdvance)
  }

  /** Why the viewer is not playing, or null while it is. */
  failure (): string | null {
    if (this.#exited !== null) {
      return `the reference viewer stopped (${this.#exited}) after ${this.#frames} frames: ${this.#stderr.slice(-500)}`
    }
    const gap = this.#gap(Date.now())
    if (gap > this.#stallMs) {
      return `the reference viewer stalled: no new frame for ${gap} ms (at frame ${this.#frames}; stderr: ${
        this.#stderr.slice(-300)})`
    }
    return null
  }

  async stop (): Promise<void> {
    this.#stopping = true
    if (this.#ff.exitCode !== null || this.#ff.signalCode !== null) return
    const gone = new Promise(resolve => this.#ff.once('exit', resolve))
    this.#ff.kill('SIGKILL')
    await gone
  }
}
