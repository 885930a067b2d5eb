/**
 * A real player that keeps playing while a test attacks the gateway: `ffmpeg -rtsp_transport http`
 * reading `url` to null, its progress (`-progress pipe:1`) watched for the longest time it did not
 * advance and the frames it decoded.
 */
import { spawn, type ChildProcess } from 'node:child_process'

export interface ReferenceViewer {
  /** Frames decoded so far. */
  readonly frames: number
  /** Longest gap between two advances of the player's output time, in ms (so far, and now). */
  worstGapMs (): number
  /** ms since the output time last advanced. */
  sinceAdvanceMs (): number
  exited (): boolean
  stop (): Promise<number | null>
}

export async function startReferenceViewer (
  url: string,
  o: { seconds?: number, userAgent?: string, localAddress?: string } = {}
): Promise<ReferenceViewer> {
  const args = ['-nostdin', '-v', 'error', '-rtsp_transport', 'http']
  if (o.userAgent !== undefined) args.push('-user_agent', o.userAgent)
  args.push(
    '-i',
    url,
    '-t',
    String(o.seconds ?? 600),
    '-f',
    'null',
    '-',
    '-progress',
    'pipe:1',
    '-stats_period',
    '0.25'
  )
  const ff: ChildProcess = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const done = new Promise<number | null>(resolve => ff.once('exit', code => resolve(code)))
  let lastOut = -1
  let lastAdvance = 0
  let worst = 0
  let frames = 0
  let stderr = ''
  ff.stderr!.on('data', d => {
    stderr += String(d)
  })
  ff.stdout!.on('data', d => {
    const text = String(d)
    for (const m of text.matchAll(/frame=(\d+)/g)) frames = Math.max(frames, Number(m[1]))
    for (const m of text.matchAll(/out_time_us=(\d+)/g)) {
      const v = Number(m[1])
      if (v > lastOut && v > 0) {
        const now = Date.now()
        if (lastAdvance !== 0) worst = Math.max(worst, now - lastAdvance)
        lastOut = v
        lastAdvance = now
      }
    }
  })
  const deadline = Date.now() + 20_000
  while (lastAdvance === 0) {
    if (ff.exitCode !== null || Date.now() > deadline) {
      ff.kill('SIGKILL')
      throw new Error(`the reference viewer did not start playing ${url}: ${stderr.slice(0, 500)}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    get frames () {
      return frames
    },
    worstGapMs: () => Math.max(worst, Date.now() - lastAdvance),
    sinceAdvanceMs: () => Date.now() - lastAdvance,
    exited: () => ff.exitCode !== null,
    async stop () {
      if (ff.exitCode === null) ff.kill('SIGINT')
      const t = setTimeout(() => ff.kill('SIGKILL'), 3000)
      const code = await done
      clearTimeout(t)
      return code
    }
  }
}
