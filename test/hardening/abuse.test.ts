/**
 * Issue 5 abuse stage against the real process (`node bin/tunnelgate.js`, embedded origin) run as a
 * child so its memory can be measured: 2,000 slowloris connections, 5,000 unpaired GETs and POSTs,
 * oversized heads, RTSP messages and `$` frames, base64 garbage and SSRF attempts. Each gets its
 * documented answer (docs/errors.md), the gateway's resident memory stays under RSS_BOUND, and a
 * real ffmpeg client plays from another address during the whole attack and a new one after it.
 * No leaks: once the attack's connections are closed, the child's descriptors (GET /admin/process
 * and /proc/<pid>/fd), timers, sockets and the tunnels gauge are back to their values before it
 * (taken after a warm-up of each kind of connection, with the healthy client playing).
 */
import t from 'tap'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { readFileSync, existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { runPeer } from '../helpers/peers.js'
import { assertNoChildLeaks, childLeakSnapshot } from '../helpers/leaks.js'
import { freePort } from '../helpers/ports.js'

const RSS_BOUND = 256 * 1024 * 1024
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const STALL_MS = 4000
const cookie = (): string => randomBytes(12).toString('base64url')

/** Open a connection from `local`, write `data`, collect what comes back until close or `waitMs`. */
function exchange (port: number, local: string, data: string | Buffer, waitMs: number,
  keep = false): Promise<{ text: string, closed: boolean, socket: net.Socket }> {
  return new Promise(resolve => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: local })
    let text = ''
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return; done = true; if (!keep) s.destroy(); resolve({ text, closed, socket: s })
    }
    s.on('data', d => { text += d.toString('latin1'); if (keep && text.includes('\r\n\r\n')) finish(false) })
    s.on('error', () => finish(true))
    s.on('close', () => finish(true))
    s.on('connect', () => s.write(data))
    setTimeout(() => finish(false), waitMs)
  })
}

async function inBatches<T> (n: number, batch: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < n; i += batch) {
    out.push(...await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => fn(i + j))))
  }
  return out
}

async function metricsText (port: number): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
}
function metricValue (text: string, name: string, label = ''): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && line.includes(label) && !line.startsWith('#')) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1))
    }
  }
  return sum
}

t.test('abuse stage against the real ' +
  'process', { skip: existsSync(`${ROOT}dist/main.js`) ? false : 'dist/ not built (npm test builds it)' }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-abuse-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const opsPort = await freePort()
  writeFileSync(join(dir, 'tg.json'),
    JSON.stringify({
      host: '127.0.0.1',
      port,
      workers: 0,
      logLevel: 'warn',
      ops: { host: '127.0.0.1', port: opsPort },
      admin: { enabled: true },
      limits: { headerTimeoutMs: 3000, clientFrameBytes: 2048 },
      tunnel: { pairingTimeoutMs: 4000 }
    }))
  // Raise the gateway's descriptor limit to the hard limit (the attack keeps at most ~2,500 sockets open at once).
  const child = spawn('bash',
    ['-c',
      `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec node bin/tunnelgate.js --config ${join(dir, 'tg.json')} > /dev/null`],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', d => { stderr += String(d) })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  t.teardown(async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await exited } })
  let rssMax = 0
  const rss = (): number => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`,
        'utf8'))![1]) * 1024
    } catch { return 0 }
  }
  const sampler = setInterval(() => { rssMax = Math.max(rssMax, rss()) }, 100)
  t.teardown(() => clearInterval(sampler))
  const up = Date.now() + 20_000
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) break
    if (Date.now() > up) throw new Error(`gateway did not start: ${stderr}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  // The healthy client, from 127.0.0.1 (the attack comes from other addresses).
  const ff = spawn('ffmpeg',
    ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${port}/live/demo`, '-t', '300',
      '-f', 'null', '-', '-progress', 'pipe:1', '-stats_period', '0.5'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (ff.exitCode === null) ff.kill('SIGKILL') })
  let lastAdvance = 0
  let lastOut = -1
  let worstGap = 0
  ff.stdout.on('data', d => {
    for (const m of String(d).matchAll(/out_time_us=(\d+)/g)) {
      const v = Number(m[1])
      if (v > lastOut && v > 0) {
        const now = Date.now()
        if (lastAdvance !== 0) worstGap = Math.max(worstGap, now - lastAdvance)
        lastOut = v; lastAdvance = now
      }
    }
  })
  const started = Date.now() + 15_000
  while (lastAdvance === 0) {
    if (Date.now() > started) throw new Error('ffmpeg did not start')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const baseRss = rss()
  // Warm-up of each kind of connection the stage makes (first uses create lasting state), then the
  // leak baseline: the healthy client's tunnel and its origin connection are part of it.
  await Promise.all([
    exchange(port, '127.0.0.10', 'GET /live/demo HTTP/1.1\r\nHost: x\r\nX-a: ', 5000),
    exchange(port, '127.0.1.9',
      `GET /live/demo HTTP/1.0\r\nx-sessioncookie: ${cookie()}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`, 1500),
    exchange(port, '127.0.1.9',
      `POST /live/demo HTTP/1.0\r\nx-sessioncookie: ${cookie()}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n`,
      300)
  ])
  const leakTarget = { opsPort }
  await new Promise(resolve => setTimeout(resolve, 500))
  const leakBefore = await childLeakSnapshot(leakTarget)
  t.equal(leakBefore.processes.length, 1, 'one gateway process (workers: 0)')
  t.equal(leakBefore.processes[0]!.pid, child.pid, 'the admin API reports the child we spawned')
  t.equal(leakBefore.tunnels, 1, 'the healthy client\'s tunnel is open at the baseline')

  // 1. 2,000 slowloris connections: each closed by the header timeout.
  const slow = await inBatches(2000, 500,
    async i => await exchange(port, `127.0.0.${2 + (i % 8)}`, 'GET /live/demo HTTP/1.1\r\nHost: x\r\nX-a: ', 8000))
  t.equal(slow.filter(r => r.closed && r.text === '').length, 2000,
    '2,000 slowloris connections closed without an answer by the header timeout')

  // 2. 5,000 unpaired legs (2,500 GETs, 2,500 POSTs) from 127.0.1.x: 200 or 503 per the per-address limit; POSTs
  // held or closed.
  const legs = await inBatches(5000, 500, async i => {
    const get = i % 2 === 0
    const head = get
      ? `GET /live/demo HTTP/1.0\r\nx-sessioncookie: ${cookie()}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`
      : `POST /live/demo HTTP/1.0\r\nx-sessioncookie: ${cookie()}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n`
    const r = await exchange(port, `127.0.1.${1 + (i % 2)}`, head, get ? 1500 : 300)
    return { get, ...r }
  })
  const gets = legs.filter(l => l.get)
  const ok200 = gets.filter(l => l.text.startsWith('HTTP/1.0 200 OK')).length
  const busy503 = gets.filter(l => l.text.startsWith('HTTP/1.0 503 ')).length
  t.equal(ok200 + busy503, 2500, `every unpaired GET got 200 or 503 (200: ${ok200}, 503: ${busy503})`)
  t.ok(busy503 > 0, 'the per-address unpaired-leg limit answered 503')
  t.equal(legs.filter(l => !l.get && l.text !== '').length, 0, 'POSTs get no answer (held or closed)')

  // 3. Oversized head → 431; oversized RTSP head and `$` frame and base64 garbage inside a tunnel.
  const big = await exchange(port, '127.0.2.1', `GET /live/demo HTTP/1.0\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 3000)
  t.match(big.text, /^HTTP\/1\.0 431 /, 'oversized head: 431')
  const c1 = cookie()
  const g = await exchange(port, '127.0.2.2',
    `GET /live/demo HTTP/1.0\r\nx-sessioncookie: ${c1}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`, 3000, true)
  t.match(g.text, /^HTTP\/1\.0 200 OK/)
  let gText = g.text
  g.socket.on('data', d => { gText += d.toString('latin1') })
  const frame = Buffer.alloc(4 + 60_000); frame[0] = 0x24; frame.writeUInt16BE(60_000, 2)
  const ssrf = 'DESCRIBE rtsp://169.254.169.254/latest/meta-data RTSP/1.0\r\nCSeq: 2\r\n\r\n'
  const post = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.2.2' })
  post.on('error', () => {})
  await new Promise<void>(resolve => post.on('connect', () => resolve()))
  post.write(`POST /live/demo HTTP/1.0\r\nx-sessioncookie: ${c1}\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n`)
  post.write(Buffer.from('OPTIONS rtsp://h/live/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n').toString('base64'))
  post.write(frame.toString('base64'))
  post.write('!!!%%%***&&&###~~~')
  post.write(Buffer.from(ssrf).toString('base64'))
  const until2 = Date.now() + 10_000
  while (!/CSeq: 2\r\n/.test(gText) && Date.now() < until2) await new Promise(resolve => setTimeout(resolve, 50))
  // (sent after the replies: a fatal error closes the tunnel with earlier replies still pending)
  post.write(Buffer.from(`OPTIONS rtsp://h/live/demo RTSP/1.0\r\nCSeq: 3\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`).toString('base64'))
  const until = Date.now() + 10_000
  while (!/RTSP\/1\.0 400 /.test(gText) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
  t.match(gText, /RTSP\/1\.0 200 OK\r\nCSeq: 1/, 'the tunnel answers its first request')
  t.match(gText, /\r\nCSeq: 2\r\n/,
    `the SSRF-looking DESCRIBE is answered by the configured origin (no other address dialled) (${gText.slice(-400)})`)
  t.match(gText, /RTSP\/1\.0 400 /, 'oversized RTSP head: RTSP 400 (then the tunnel is closed)')
  post.destroy(); g.socket.destroy()

  // No leaks: with the attack's connections closed, the child is back to its baseline.
  const leakAfter = await assertNoChildLeaks(leakTarget, leakBefore)
  t.pass(`no leak in the gateway process after the stage: ${JSON.stringify(leakBefore.processes[0])} -> ${JSON.stringify(leakAfter.processes[0])}`)

  const m = await metricsText(opsPort)
  t.ok(metricValue(m, 'tunnelgate_errors_total', 'code="TG_ERR_HTTP_HEAD_TIMEOUT"') >= 2000, 'slowloris counted')
  t.ok(metricValue(m, 'tunnelgate_errors_total', 'code="TG_ERR_TUN_IP_LIMIT"') >= busy503, 'per-address limit counted')
  t.equal(metricValue(m, 'tunnelgate_errors_total', 'code="TG_ERR_HTTP_HEAD_TOO_LARGE"'), 1, 'oversized head counted')
  t.equal(metricValue(m, 'tunnelgate_errors_total', 'code="TG_ERR_RTSP_FRAME_TOO_LARGE"'), 1,
    'oversized frame dropped and counted')
  t.ok(metricValue(m, 'tunnelgate_errors_total', 'code="TG_ERR_B64_GARBAGE"') > 0, 'base64 garbage counted')
  t.ok(metricValue(m, 'tunnelgate_errors_total', 'code="TG_ERR_RTSP_TOO_LARGE"') >= 1, 'oversized RTSP head counted')

  // The healthy client kept playing; a new client plays after the attack.
  t.ok(Date.now() - lastAdvance < STALL_MS && worstGap < STALL_MS,
    `the player never stalled during the attack (worst gap ${worstGap} ms)`)
  ff.kill('SIGINT')
  const after = await runPeer('ffmpeg',
    ['-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${port}/demo`, '-t', '2', '-f', 'null', '-'],
    { timeoutMs: 30_000 })
  t.equal(after.code, 0, `a new client plays after the attack (${after.stderr.slice(0, 200)})`)
  t.ok(rssMax < RSS_BOUND,
    `gateway RSS stayed under ${RSS_BOUND >> 20} MiB (max ${(rssMax / 1048576).toFixed(1)} MiB, at start ${(baseRss / 1048576).toFixed(1)} MiB)`)
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'the gateway exits 0 on SIGTERM after the attack')
})
