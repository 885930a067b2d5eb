/**
 * Helpers for tests that drive real peers (ffmpeg, ffprobe, gst-launch-1.0) and raw RTSP.
 *
 * - runPeer: spawn a program with a hard timeout; collect stdout/stderr; never throws for a
 *   non-zero exit (a missing program rejects, so a test fails rather than skips).
 * - runGst: gst-launch-1.0 up to a fakesink's num-buffers, the buffers counted, and GStreamer's
 *   own stop-time race told apart from a failure.
 * - makeTestMedia: an H.264 + AAC MP4 made by ffmpeg from lavfi test sources.
 * - RawRtspClient: an RTSP/1.0 client over a plain socket (pipelining, interleaved frames).
 */
import { spawn } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { RtspDemuxer } from '../../src/tunnel/codec/demux.js'
import { getHeader, type Header, type RtspResponse } from '../../src/tunnel/codec/rtsp-message.js'

export interface PeerResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
  ms: number
}

export interface RunPeerOptions {
  timeoutMs?: number
  /** Signal sent at the timeout (default SIGTERM, then SIGKILL 2 s later). */
  killSignal?: NodeJS.Signals
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/** Run a peer program to completion (or its timeout). Rejects only if it cannot be started. */
export function runPeer (cmd: string, args: string[], opts: RunPeerOptions = {}): Promise<PeerResult> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    let killTimer: NodeJS.Timeout | undefined
    const timer = setTimeout(() => {
      timedOut = true
      child.kill(opts.killSignal ?? 'SIGTERM')
      killTimer = setTimeout(() => child.kill('SIGKILL'), 2000)
    }, opts.timeoutMs ?? 30000)
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${cmd}: ${e.message}`)) })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (killTimer !== undefined) clearTimeout(killTimer)
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        timedOut,
        ms: Date.now() - t0
      })
    })
  })
}

export interface GstResult extends PeerResult {
  /** Buffers the fakesink received (its per-buffer `last-message`, printed with -v). */
  buffers: number
  /** Exit 1 after every buffer, failing only in the stop-time PAUSE write (see runGst). */
  stopRace: boolean
  /** Exit 0, or the stop-time race after every buffer. */
  played: boolean
}

/**
 * gst-launch-1.0 -v `elements` ! fakesink num-buffers=`buffers` sync=true silent=false: the
 * pipeline plays until the sink has `buffers` buffers, and each one is counted from the sink's
 * `last-message` notifications on stdout.
 *
 * GStreamer 1.22's stop-time race: at the sink's EOS gst-launch takes the pipeline down; rtspsrc
 * sends PAUSE (PLAYING → PAUSED) from a thread of its own while the move on to READY cancels the
 * connection's pending writes, and when the cancel comes first the PAUSE write fails with "Could
 * not send message. (Received end-of-file)" (gst_rtspsrc_try_send, then gst_rtspsrc_pause) and
 * gst-launch exits 1, after every buffer has played. It is GStreamer's alone: with no gateway in
 * the path (rtspt:// straight to the embedded origin, two CPU hogs running) 5 of 90 runs ended so,
 * every one after all 50 buffers; sync=true makes it rare on an idle machine, not impossible on a
 * loaded one. `stopRace` is that ending exactly: exit 1, every buffer received, nothing on stderr
 * but ERRORs, and every ERROR one of those two.
 */
export async function runGst (elements: string[], buffers: number, opts: RunPeerOptions = {}): Promise<GstResult> {
  return gstOutcome(
    await runPeer(
      'gst-launch-1.0',
      ['-v', ...elements, '!', 'fakesink', `num-buffers=${buffers}`, 'sync=true', 'silent=false'],
      opts
    ),
    buffers
  )
}

/** A runGst result for an assertion message: exit, buffers, the race if it was one, the start of stderr. */
export function gstSummary (r: GstResult, stderrChars = 300): string {
  return `exit ${r.code}, ${r.buffers} buffers${r.stopRace ? ", GStreamer's own stop-time race" : ''}; stderr: ${
    r.stderr.slice(0, stderrChars)}`
}

/** runGst's reading of a finished gst-launch -v run that was to play `buffers` buffers. */
export function gstOutcome (r: PeerResult, buffers: number): GstResult {
  const got = (r.stdout.match(/last-message = chain/g) ?? []).length
  const [before, ...errors] = r.stderr.split(/^ERROR: /m)
  const stopRace =
    r.code === 1 &&
    !r.timedOut &&
    got >= buffers &&
    before!.trim() === '' &&
    errors.length > 0 &&
    errors.every(
      e => /gst_rtspsrc_(try_send|pause) \(\)/.test(e) && /Could not send message\. \(Received end-of-file\)/.test(e)
    )
  return { ...r, buffers: got, stopRace, played: r.code === 0 || stopRace }
}

export interface TestMediaOptions {
  /** File name (default test.mp4). */
  name?: string
  width?: number
  height?: number
  fps?: number
  /** GOP in frames (default = fps, i.e. 1 s). */
  gop?: number
  /** Video encoder (default libx264; e.g. mpeg4 to make an unsupported file). */
  videoCodec?: string
  audio?: boolean
  kbps?: number
}

/** Make an H.264 (no B-frames) + AAC-LC 48 kHz MP4 with ffmpeg; returns its path. */
export async function makeTestMedia (dir: string, seconds: number, o: TestMediaOptions = {}): Promise<string> {
  const fps = o.fps ?? 25
  const file = join(dir, o.name ?? 'test.mp4')
  const vcodec = o.videoCodec ?? 'libx264'
  const args = ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${o.width ?? 320}x${o.height ?? 180}:rate=${fps}:duration=${seconds}`]
  if (o.audio !== false) args.push('-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`)
  args.push('-map', '0:v')
  if (o.audio !== false) args.push('-map', '1:a')
  args.push('-c:v', vcodec, '-pix_fmt', 'yuv420p', '-b:v', `${o.kbps ?? 300}k`, '-g', String(o.gop ?? fps))
  if (vcodec === 'libx264') {
    args.push(
      '-preset',
      'veryfast',
      '-bf',
      '0',
      '-x264-params',
      `keyint=${o.gop ?? fps}:min-keyint=${o.gop ?? fps}:scenecut=0`
    )
  }
  if (o.audio !== false) args.push('-c:a', 'aac', '-b:a', '64k', '-ar', '48000', '-ac', '2')
  args.push('-movflags', '+faststart', file)
  const r = await runPeer('ffmpeg', args, { timeoutMs: 60000 })
  if (r.code !== 0) throw new Error(`ffmpeg could not make ${file}: ${r.stderr}`)
  return file
}

export interface RtspReply extends RtspResponse {
  /** Convenience: header lookup. */
  header (name: string): string | undefined
}

interface Pending { resolve: (r: RtspReply) => void, reject: (e: Error) => void }

/** A raw RTSP/1.0 client: requests with automatic CSeq (and Session once set up). */
export class RawRtspClient {
  readonly socket: Socket
  /** Called for every interleaved frame. */
  onFrame: ((channel: number, payload: Buffer) => void) | undefined
  /** Session id from the last SETUP reply (sent automatically on later requests). */
  session: string | undefined
  #cseq = 0
  readonly #pending = new Map<string, Pending>()
  readonly #demux = new RtspDemuxer()
  #closed = false
  #closeWaiters: Array<() => void> = []

  private constructor (socket: Socket) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      this.#closed = true
      for (const p of this.#pending.values()) p.reject(new Error('connection closed'))
      this.#pending.clear()
      for (const w of this.#closeWaiters) w()
    })
  }

  static connect (port: number, host = '127.0.0.1'): Promise<RawRtspClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host)
      s.once('connect', () => { s.off('error', reject); resolve(new RawRtspClient(s)) })
      s.once('error', reject)
    })
  }

  get closed (): boolean { return this.#closed }

  /** Resolves when the server closes the connection. */
  waitClose (): Promise<void> {
    return this.#closed ? Promise.resolve() : new Promise((resolve) => this.#closeWaiters.push(resolve))
  }

  /** Send a request; resolves with the reply matched by CSeq. */
  request (method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<RtspReply> {
    const cseq = String(++this.#cseq)
    let head = `${method} ${url} RTSP/1.0\r\nCSeq: ${cseq}\r\nUser-Agent: tunnelgate-test\r\n`
    const hs = { ...headers }
    if (this.session !== undefined && !Object.keys(hs).some((k) => k.toLowerCase() === 'session')) {
      hs.Session = this.session
    }
    for (const [k, v] of Object.entries(hs)) head += `${k}: ${v}\r\n`
    const bodyBuf = body === undefined ? undefined : Buffer.from(body)
    if (bodyBuf !== undefined) head += `Content-Length: ${bodyBuf.length}\r\n`
    head += '\r\n'
    const p = new Promise<RtspReply>((resolve, reject) => {
      this.#pending.set(cseq, {
        resolve: (r) => {
          if (method === 'SETUP' && r.status === 200) this.session = r.header('session')?.split(';')[0]
          resolve(r)
        },
        reject
      })
    })
    this.sendRaw(bodyBuf === undefined ? Buffer.from(head) : Buffer.concat([Buffer.from(head), bodyBuf]))
    return p
  }

  sendRaw (b: Buffer | string): void {
    if (!this.#closed) this.socket.write(b)
  }

  close (): void {
    this.socket.destroy()
  }

  #onData (chunk: Buffer): void {
    for (const u of this.#demux.push(chunk)) {
      if (u.kind === 'frame') {
        this.onFrame?.(u.channel, Buffer.from(u.payload))
      } else if (u.kind === 'response') {
        const cseq = getHeader(u, 'cseq')
        const reply: RtspReply = { ...u, header: (n: string) => getHeader(u, n) }
        const key = cseq ?? [...this.#pending.keys()][0]
        const p = key === undefined ? undefined : this.#pending.get(key)
        if (p !== undefined && key !== undefined) { this.#pending.delete(key); p.resolve(reply) }
      }
    }
  }
}

export type { Header }
