/**
 * Helpers for the operator-surface tests: ffmpeg players kept running through the gateway
 * (stream copy, no decoding, killed at teardown), and a small JSON client for the admin API.
 */
import { spawn, type ChildProcess } from 'node:child_process'

export interface Player { child: ChildProcess, exited: Promise<number | null>, stop: () => Promise<void> }

const players = new Set<Player>()

/** ffmpeg -rtsp_transport http playing `url` until stopped (stream copy to the null muxer). */
export function play (url: string): Player {
  const child = spawn(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', url, '-c', 'copy', '-f', 'null', '-'],
    { stdio: ['ignore', 'ignore', 'pipe'] }
  )
  child.stderr!.resume()
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const p: Player = {
    child,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited
      }
      players.delete(p)
    }
  }
  players.add(p)
  return p
}

export async function stopAllPlayers (): Promise<void> {
  await Promise.all([...players].map(async p => await p.stop()))
}
process.once('exit', () => { for (const p of players) p.child.kill('SIGKILL') })

export interface ApiReply { status: number, body: any, headers: Headers }

export function adminClient (
  port: number,
  token = ''
): (method: string, path: string, body?: unknown, raw?: string) => Promise<ApiReply> {
  return async (method, path, body, raw) => {
    const headers: Record<string, string> = {}
    if (token !== '') headers.authorization = `Bearer ${token}`
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers,
      ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers }
  }
}

/** Poll until `ok(value)` or the deadline. */
export async function until<T> (
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  timeoutMs = 20_000,
  stepMs = 200
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await probe()
    if (ok(last)) return last
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(last).slice(0, 500)}`)
    }
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}
