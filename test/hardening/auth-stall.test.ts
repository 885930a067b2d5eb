/**
 * Password guessing must not stall other tunnels. The real process (`node bin/tunnelgate.js`,
 * one process, embedded origin, a realistic scrypt hash) serves a victim tunnel from 127.0.0.1
 * that counts the gaps between its media reads, while an attacker from other addresses sends wrong
 * Basic passwords for the same known user as fast as the gateway answers (back-off off, so every
 * guess reaches the password check). The longest gap under attack is compared with the victim's
 * own gaps in a baseline taken just before, in the same run.
 */
import t from 'tap'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hashPassword } from '../../src/door/auth.js'
import { TunnelClient, destroyAllClients, newCookie } from '../helpers/tunnel-client.js'
import { freePort } from '../helpers/ports.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BASELINE_MS = 4000
const ATTACK_MS = 8000
const ATTACKERS = 16
/** Under attack no gap may be longer than this many times the victim's longest baseline gap… */
const GAP_FACTOR = 4
/** …nor, whatever the baseline, than this many times its median inter-read interval. */
const MEDIAN_FACTOR = 20
const credentials = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`

t.teardown(destroyAllClients)

t.test('a victim tunnel keeps its media flowing while an attacker guesses ' +
  'passwords', { skip: existsSync(`${ROOT}dist/main.js`) ? false : 'dist/ not built (npm test builds it)' },
async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-stall-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  writeFileSync(join(dir, 'tg.json'), JSON.stringify({
    host: '127.0.0.1',
    port,
    workers: 0,
    logLevel: 'warn',
    auth: {
      basic: [{ user: 'viewer', hash: hashPassword('viewer-pw') }],
      maxFailuresPerAddress: 0,
      maxFailuresPerUser: 0
    }
  }))
  const child = spawn('node', ['bin/tunnelgate.js', '--config', join(dir, 'tg.json')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', d => { stderr += String(d) })
  const exited = new Promise(resolve => child.once('exit', resolve))
  t.teardown(async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await exited } })
  for (const deadline = Date.now() + 20_000; ;) {
    const up = await new Promise<boolean>(resolve => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline) throw new Error(`gateway did not start: ${stderr}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  // The victim: a live stream through a tunnel it signed in to; every read of its GET is timed.
  const victim = await TunnelClient.open(port, {
    cookie: newCookie(),
    path: '/live/demo',
    url: `rtsp://127.0.0.1:${port}/live/demo`,
    getHeaders: [['Authorization', credentials('viewer', 'viewer-pw')]],
    headTimeoutMs: 10_000
  })
  t.equal(victim.get.head?.statusLine, 'HTTP/1.0 200 OK', 'the victim signed in')
  const { play } = await victim.play()
  t.equal(play.status, 200, 'the victim plays')
  const reads: number[] = []
  victim.get.socket.on('data', () => { reads.push(performance.now()) })
  await new Promise(resolve => setTimeout(resolve, 1000)) // past the GOP cache burst
  const gapsIn = (from: number, to: number): number[] => {
    const at = reads.filter(x => x >= from && x <= to)
    return at.slice(1).map((x, i) => x - at[i]!)
  }
  const baseFrom = performance.now()
  await new Promise(resolve => setTimeout(resolve, BASELINE_MS))
  const baseTo = performance.now()

  // The attacker: ATTACKERS connections at a time, each sending the next guess as soon as the last is answered.
  let guesses = 0
  const answers = new Map<string, number>()
  let attacking = true
  const guess = async (i: number): Promise<void> => {
    while (attacking) {
      const reply = await new Promise<string>(resolve => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.9.${1 + (i % 250)}` })
        let got = ''
        s.on('connect',
          () =>
            s.write(`GET /live/demo HTTP/1.0\r\nx-sessioncookie: ${newCookie()}\r\nAuthorization: ${credentials('viewer', `guess-${guesses++}`)}\r\n\r\n`))
        s.on('data', d => { got += d.toString('latin1') })
        s.on('error', () => {})
        s.on('close', () => resolve(got))
      })
      const status = /^HTTP\/1\.0 (\d{3})/.exec(reply)?.[1] ?? 'none'
      answers.set(status, (answers.get(status) ?? 0) + 1)
    }
  }
  const attackFrom = performance.now()
  const attack = Promise.all(Array.from({ length: ATTACKERS }, async (_, i) => { await guess(i) }))
  await new Promise(resolve => setTimeout(resolve, ATTACK_MS))
  attacking = false
  await attack
  const attackTo = performance.now()

  const base = gapsIn(baseFrom, baseTo)
  const under = gapsIn(attackFrom, attackTo)
  const median = [...base].sort((a, b) => a - b)[Math.floor(base.length / 2)] ?? 0
  const baseMax = Math.max(...base)
  const underMax = Math.max(...under)
  const bound = Math.max(GAP_FACTOR * baseMax, MEDIAN_FACTOR * median)
  const summary =
    `baseline: ${base.length} reads, median ${median.toFixed(1)} ms, longest ${baseMax.toFixed(0)} ms; under attack: ${under.length} reads, longest ${underMax.toFixed(0)} ms (bound ${bound.toFixed(0)} ms); guesses answered ${JSON.stringify(Object.fromEntries(answers))}`
  t.ok(base.length > 20, `the victim was receiving media (${summary})`)
  t.ok((answers.get('401') ?? 0) >= 20, 'the attacker got its guesses checked')
  t.ok(under.length > base.length / 4, 'the victim kept receiving media under attack')
  t.ok(underMax <= bound,
    `no gap under attack longer than ${GAP_FACTOR}× the longest baseline gap or ${MEDIAN_FACTOR}× the median (${summary})`)
  victim.close()
})
