/**
 * GStreamer's RTSP server (gst-rtsp-server through python3-gi) as a real backend for the
 * interop tests. Runs test/peers/gst-origin.py (a copy of the project's reference peer) with
 * Debian's /usr/bin/python3 on a free port, waits until it accepts connections, and kills it on
 * close(). Mounts: /live (shared videotestsrc + AAC test tone, not seekable) and /vod (the given
 * H.264+AAC MP4, one pipeline per client: PLAY Range, PAUSE and re-PLAY work).
 *
 * Missing python3-gi / gir1.2-gst-rtsp-server-1.0 makes startGstServer() REJECT with a message
 * naming the Debian packages, so a test fails rather than skips.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { runPeer } from './peers.js'
import { freePort } from './ports.js'

export const PYTHON = '/usr/bin/python3'
export const GST_ORIGIN_SCRIPT = fileURLToPath(new URL('../peers/gst-origin.py', import.meta.url))

export interface GstServer {
  port: number
  host: string
  /** rtsp://host:port — for buildConfig({ backends: [...] }). */
  url: string
  /** Everything the server printed (stdout + stderr). */
  output (): string
  close (): Promise<void>
}

export interface GstServerOptions {
  /** H.264 + AAC MP4 served on /vod (omit to serve /live only). */
  vodFile?: string
  /** Mounts, default 'live,vod' (or 'live' without vodFile). */
  mounts?: string
  width?: number
  height?: number
  fps?: number
  /** Live video kbit/s. */
  bitrate?: number
  /**
   * Leave /live seekable (gst-origin --seekable-live, stock gst-rtsp-server behaviour). Needed
   * for clients that PAUSE a live stream (rtspsrc does on stop): gst-rtsp-server 1.22 answers
   * 400 to PAUSE on the default non-seekable (clock+offset) live mount. Do not use it with
   * clients that PLAY /live with Range: npt=0- (ffmpeg): see the note in gst-origin.py.
   */
  seekableLive?: boolean
  /** RTP lower transports the server offers (gst-origin --protocols; default all: UDP, UDP multicast, TCP). */
  protocols?: 'all' | 'tcp' | 'udp'
  /** Print gst-origin's per-request log lines (see output()). */
  verbose?: boolean
  startTimeoutMs?: number
}

export { freePort }

function canConnect (port: number, host: string): Promise<boolean> {
  return new Promise(resolve => {
    const s = connect(port, host)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

/** Throws a clear error when Debian's python3-gi / GStreamer RTSP server bindings are missing. */
export async function checkGstPython (): Promise<void> {
  const probe =
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); " +
    'from gi.repository import Gst, GstRtspServer; Gst.init(None); ' +
    "missing = [e for e in ('x264enc', 'rtph264pay', 'rtpmp4gpay', 'qtdemux', 'h264parse', 'aacparse', " +
    "'videotestsrc') if Gst.ElementFactory.find(e) is None]; " +
    "print('MISSING ' + ' '.join(missing) if missing else 'OK')"
  let r
  try {
    r = await runPeer(PYTHON, ['-c', probe], { timeoutMs: 20000 })
  } catch (err) {
    throw new Error(
      `interop: ${PYTHON} cannot be run (${(err as Error).message}); install Debian's python3 and python3-gi`
    )
  }
  if (r.code !== 0) {
    throw new Error('interop: GStreamer RTSP server bindings are missing for ' + PYTHON +
      ' (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad ' +
      `gstreamer1.0-plugins-ugly gstreamer1.0-libav): ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`)
  }
  if (r.stdout.trim() !== 'OK') {
    throw new Error(
      `interop: GStreamer elements missing (${r.stdout.trim()}); install gstreamer1.0-plugins-{base,good,bad,ugly} and gstreamer1.0-libav`
    )
  }
}

/** Start gst-origin.py on a free port; resolves once it accepts TCP connections. */
export async function startGstServer (o: GstServerOptions = {}): Promise<GstServer> {
  await checkGstPython()
  readFileSync(GST_ORIGIN_SCRIPT) // fail early and clearly if the copy is missing
  let lastErr: Error | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    try {
      return await spawnOn(port, o)
    } catch (err) {
      lastErr = err as Error
      // the port was taken between freePort() and bind(): try another one
      if (!/cannot bind/.test(lastErr.message)) throw lastErr
    }
  }
  throw lastErr ?? new Error('gst-origin did not start')
}

async function spawnOn (port: number, o: GstServerOptions): Promise<GstServer> {
  const host = '127.0.0.1'
  const mounts = o.mounts ?? (o.vodFile === undefined ? 'live' : 'live,vod')
  const args = [GST_ORIGIN_SCRIPT, '--address', host, '--port', String(port), '--mounts', mounts,
    '--width', String(o.width ?? 320), '--height', String(o.height ?? 240), '--fps', String(o.fps ?? 25),
    '--bitrate', String(o.bitrate ?? 500), '--no-overlay']
  if (o.vodFile !== undefined) args.push('--vod-file', o.vodFile)
  if (o.verbose === true) args.push('--verbose')
  if (o.seekableLive === true) args.push('--seekable-live')
  if (o.protocols !== undefined) args.push('--protocols', o.protocols)
  const child: ChildProcess = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  let exited: { code: number | null, signal: NodeJS.Signals | null } | undefined
  // if the test process ends without teardown (crash, process.exit), do not orphan the server
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exit = new Promise<void>(resolve => child.once('exit', (code, signal) => {
    exited = { code, signal }
    process.removeListener('exit', killOnExit)
    resolve()
  }))
  let spawnError: Error | undefined
  child.once('error', err => { spawnError = err })

  const close = async (): Promise<void> => {
    if (exited !== undefined) return
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exit
    clearTimeout(t)
  }

  const deadline = Date.now() + (o.startTimeoutMs ?? 15000)
  for (;;) {
    if (exited !== undefined) {
      throw new Error(
        `gst-origin.py exited (code ${String(exited.code)}, signal ${String(exited.signal)}) before listening on ${
          host}:${port}: ${out.trim()}`
      )
    }
    if (spawnError !== undefined) throw new Error(`cannot run ${PYTHON}: ${spawnError.message}`)
    if (await canConnect(port, host)) break
    if (Date.now() > deadline) {
      await close()
      throw new Error(
        `gst-origin.py did not listen on ${host}:${port} within ${o.startTimeoutMs ?? 15000} ms: ${out.trim()}`
      )
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return { port, host, url: `rtsp://${host}:${port}`, output: () => out, close }
}
