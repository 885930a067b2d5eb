/**
 * Distributed abuse against the real gateway (child processes): from 250 source addresses at once
 * (127.0.1.1–127.0.1.250), 1,000 slowloris heads, 2,000 unpaired tunnel GETs, 500 POSTs of garbage
 * and 200 oversized heads, each kind renewed as the gateway closes it, for ATTACK_S seconds. A real
 * ffmpeg tunnel from 127.0.0.1 plays the live demo throughout: its frame rate during the attack must
 * stay at 95 % or more of its rate just before it (same run); a new tunnel opens afterwards; the
 * gateway's resident memory (every process) stays under 1 GiB. Per-address limits cannot be what
 * holds here (each address opens few legs): global budgets and cheap early refusals must.
 */
import t from 'tap'
import net from 'node:net'
import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { startChildGateway, type Layout } from '../helpers/child-gateway.js'
import { startReferenceViewer } from '../helpers/reference-viewer.js'
import { runPeer } from '../helpers/peers.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const ATTACK_S = Number(process.env.TUNNELGATE_ABUSE_SECONDS ?? 20)
const BASELINE_S = 6
const ADDRESSES = 250
const address = (i: number): string => `127.0.1.${1 + (i % ADDRESSES)}`

/** One attacker connection kind, renewed whenever the gateway closes it, until `stop`. */
function keep (port: number, local: string, open: (s: net.Socket) => void, stopped: () => boolean,
  counts: { opened: number }): void {
  if (stopped()) return
  const s = net.connect({ port, host: '127.0.0.1', localAddress: local })
  counts.opened++
  s.on('error', () => {})
  s.on('data', () => {})
  s.on('connect', () => open(s))
  s.on('close', () => { setTimeout(() => keep(port, local, open, stopped, counts), 200) })
  attackers.add(s)
  s.on('close', () => attackers.delete(s))
}
const attackers = new Set<net.Socket>()

function rss (pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`,
      'utf8'))![1]) * 1024
  } catch { return 0 }
}
function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`,
      'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch { return [] }
}

for (const layout of ['workers', 'all'] as Layout[]) {
  t.test(`layout ${layout}: a player keeps 95 % of its frame rate under distributed abuse`,
    { skip: existsSync(`${ROOT}dist/main.js`) ? false : 'dist/ not built (npm test builds it)' }, async t => {
      const gw = await startChildGateway(layout, {
        front: { logLevel: 'info', limits: { headerTimeoutMs: 10_000 }, tunnel: { pairingTimeoutMs: 30_000 } }
      })
      t.teardown(async () => { for (const s of attackers) s.destroy(); await gw.stop() })
      const pids = (): number[] => gw.procs.flatMap(p => [p.child.pid!, ...childPids(p.child.pid!)])
      let rssMax = 0
      const sampler = setInterval(() => { rssMax = Math.max(rssMax, pids().reduce((n, p) => n + rss(p), 0)) }, 200)
      t.teardown(() => clearInterval(sampler))

      const viewer = await startReferenceViewer(`rtsp://127.0.0.1:${gw.port}/live/demo`)
      t.teardown(async () => { await viewer.stop() })
      await new Promise(resolve => setTimeout(resolve, 2000))
      const f0 = viewer.frames
      await new Promise(resolve => setTimeout(resolve, BASELINE_S * 1000))
      const baseline = (viewer.frames - f0) / BASELINE_S

      let stop = false
      const stopped = (): boolean => stop
      const counts = { slowloris: { opened: 0 }, gets: { opened: 0 }, posts: { opened: 0 }, big: { opened: 0 } }
      const port = gw.port
      const drips: NodeJS.Timeout[] = []
      for (let i = 0; i < 1000; i++) {
        keep(port, address(i), s => {
          s.write('GET /live/demo HTTP/1.1\r\nHost: gw\r\n')
          const d = setInterval(() => { if (!s.destroyed) s.write('X-a: b\r\n') }, 1000)
          drips.push(d)
          s.on('close', () => clearInterval(d))
        }, stopped, counts.slowloris)
      }
      for (let i = 0; i < 2000; i++) {
        keep(port, address(i + 7),
          s => { s.write(`GET /live/demo HTTP/1.0\r\nx-sessioncookie: ${randomBytes(12).toString('base64url')}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`) },
          stopped, counts.gets)
      }
      for (let i = 0; i < 500; i++) {
        keep(port, address(i + 13), s => {
          s.write(`POST /live/demo HTTP/1.0\r\nx-sessioncookie: ${randomBytes(12).toString('base64url')}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n`)
          const d = setInterval(() => { if (!s.destroyed) s.write(randomBytes(512)) }, 500)
          drips.push(d)
          s.on('close', () => clearInterval(d))
        }, stopped, counts.posts)
      }
      const big = `GET /live/demo HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`
      for (let i = 0; i < 200; i++) keep(port, address(i + 29), s => { s.write(big) }, stopped, counts.big)

      const a0 = viewer.frames
      const attackStart = Date.now()
      await new Promise(resolve => setTimeout(resolve, ATTACK_S * 1000))
      const during = (viewer.frames - a0) / ((Date.now() - attackStart) / 1000)
      stop = true
      for (const d of drips) clearInterval(d)
      for (const s of attackers) s.destroy()

      const ratio = during / baseline
      t.ok(ratio >= 0.95,
      `frame rate during the attack ${during.toFixed(2)}/s against ${baseline.toFixed(2)}/s before it: ${(100 * ratio).toFixed(1)} %, longest pause ${viewer.worstGapMs()} ms (connections opened: ${JSON.stringify(Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v.opened])))})`)
      t.ok(gw.alive(), 'every gateway process alive')
      const after = await runPeer('ffmpeg',
        ['-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${port}/demo`, '-t', '1', '-f', 'null', '-'],
        { timeoutMs: 30_000 })
      t.equal(after.code, 0, `a new tunnel opens and plays after the attack (${after.stderr.slice(0, 200)})`)
      t.ok(rssMax < 1024 * 1024 * 1024,
      `resident memory of the gateway's processes stayed under 1 GiB (max ${(rssMax / 1048576).toFixed(0)} MiB)`)
    })
}
