/**
 * Issue 5 fuzz stage: fast-check (seeded) sends random bytes and mutated real captures
 * (test/fixtures/captures: the client→server bytes of real GET and POST legs) at the portal over
 * real sockets — as GET/POST pairs and as single connections — while `ffmpeg -rtsp_transport http`
 * plays a live stream through the same gateway. The player must never stall (its progress advances
 * at least every STALL_MS) and the process must never throw.
 *
 * Time box: 20 s (CI); TUNNELGATE_FUZZ_SECONDS for longer, TUNNELGATE_FUZZ_SEED to replay a seed.
 */
import t from 'tap'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import pino from 'pino'
import { buildConfig } from '../../src/config/config.js'
import { startGateway } from '../../src/gateway.js'
import { startOrigin } from '../../src/origin/index.js'
import { loadTcpConnections } from '../helpers/pcap.js'

const SECONDS = Number(process.env.TUNNELGATE_FUZZ_SECONDS ?? 20)
const SEED = Number(process.env.TUNNELGATE_FUZZ_SEED ?? 0x5eed5)
const STALL_MS = 4000
const DIR = fileURLToPath(new URL('../fixtures/captures/', import.meta.url))

const uncaught: unknown[] = []
const onUncaught = (err: unknown): void => { uncaught.push(err) }
process.on('uncaughtException', onUncaught)
process.on('unhandledRejection', onUncaught)
t.teardown(() => { process.off('uncaughtException', onUncaught); process.off('unhandledRejection', onUncaught) })

/** Client→server byte streams of every captured leg (GET and POST heads + bodies). */
const corpus: Buffer[] = []
for (const f of readdirSync(DIR).filter(n => n.endsWith('.pcap'))) {
  for (const c of loadTcpConnections(DIR + f)) {
    if (c.clientToServer.length > 0) corpus.push(c.clientToServer.subarray(0, 64 * 1024))
  }
}

/** Replace the captured cookie with a fresh one so a mutated pair forms its own tunnel. */
function recookie (b: Buffer, cookie: string): Buffer {
  return Buffer.from(b.toString('latin1').replace(/(x-sessioncookie:\s*)[^\r\n]+/ig, `$1${cookie}`), 'latin1')
}

type Mutation = {
  kind: 'flip',
  at: number,
  bit: number
} | {
  kind: 'insert',
  at: number,
  bytes: Uint8Array
} | {
  kind: 'cut',
  at: number,
  len: number
} | { kind: 'dup', at: number, len: number } | { kind: 'truncate', at: number }

function mutate (src: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(src)
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length
    if (m.kind === 'flip') {
      if (b.length > 0) b[at] = b[at]! ^ (1 << m.bit)
    } else if (m.kind === 'insert') {
      b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)])
    } else if (m.kind === 'cut') {
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)])
    } else if (m.kind === 'dup') {
      b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at, at + m.len), b.subarray(at + m.len)])
    } else {
      b = b.subarray(0, at)
    }
  }
  return b
}

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 })
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() })
)

interface Case { legs: Buffer[], splits: number[], linger: number }

const caseArb: fc.Arbitrary<Case> = fc.oneof(
  // Random bytes, sometimes behind a plausible tunnel head.
  fc.record({
    prefix: fc.constantFrom('', 'GET /live/demo HTTP/1.0\r\nx-sessioncookie: COOKIE\r\n\r\n',
      'POST /live/demo HTTP/1.0\r\nx-sessioncookie: COOKIE\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n',
      'OPTIONS rtsp://h/live/demo RTSP/1.0\r\nCSeq: 1\r\n'),
    body: fc.uint8Array({ maxLength: 4096 })
  }).map(({ prefix, body }) => [Buffer.concat([Buffer.from(prefix, 'latin1'), Buffer.from(body)])]),
  // A mutated captured GET and POST (as a pair with a fresh shared cookie), or one mutated leg.
  fc.record({
    a: fc.nat(),
    b: fc.nat(),
    ma: fc.array(mutationArb, { maxLength: 4 }),
    mb: fc.array(mutationArb, { maxLength: 4 }),
    pair: fc.boolean()
  })
    .map(({ a, b, ma, mb, pair }) =>
      pair
        ? [mutate(corpus[a % corpus.length]!, ma),
            mutate(corpus[b % corpus.length]!, mb)]
        : [mutate(corpus[a % corpus.length]!, ma)])
).chain(legs =>
  fc.record({
    legs: fc.constant(legs),
    splits: fc.array(fc.nat(), { maxLength: 6 }),
    linger: fc.integer({ min: 0, max: 150 })
  }))

async function send (port: number, c: Case): Promise<void> {
  const cookie = randomBytes(12).toString('base64url')
  await Promise.all(c.legs.map(async raw => {
    const bytes = recookie(raw, cookie).toString('latin1').includes('COOKIE')
      ? Buffer.from(raw.toString('latin1').replace(/COOKIE/g, cookie), 'latin1')
      : recookie(raw, cookie)
    await new Promise<void>(resolve => {
      const s = net.connect(port, '127.0.0.1')
      let done = false
      const finish = (): void => { if (!done) { done = true; s.destroy(); resolve() } }
      s.on('error', finish)
      s.on('close', finish)
      s.on('data', () => {})
      s.on('connect', () => {
        const cuts = [...new Set(c.splits.map(x => bytes.length === 0 ? 0 : x % bytes.length))].sort((x, y) => x - y)
        let prev = 0
        for (const cut of [...cuts, bytes.length]) { if (cut > prev) s.write(bytes.subarray(prev, cut)); prev = cut }
        setTimeout(finish, c.linger)
      })
    })
  }))
}

t.test(`fuzz the portal for ${SECONDS} s (seed ${SEED}) while ffmpeg plays`, async t => {
  t.ok(corpus.length >= 12, `${corpus.length} captured legs in the corpus`)
  const silent = pino({ level: 'silent' })
  const origin = await startOrigin({ port: 0, host: '127.0.0.1', logger: silent })
  t.teardown(() => origin.close())
  const config = buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    ops: { port: 0 },
    backends: [`rtsp://127.0.0.1:${origin.port}`],
    limits: { headerTimeoutMs: 2000 },
    tunnel: { pairingTimeoutMs: 2000 }
  }])
  const gw = await startGateway(config, { logger: silent })
  t.teardown(() => gw.close())

  // The healthy client: live stream, progress every 500 ms.
  const ff = spawn('ffmpeg',
    ['-nostdin', '-v', 'error', '-rtsp_transport', 'http', '-i', `rtsp://127.0.0.1:${gw.port}/live/demo`, '-t',
      String(SECONDS + 6), '-f', 'null', '-', '-progress', 'pipe:1', '-stats_period', '0.5'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (ff.exitCode === null) ff.kill('SIGKILL') })
  let stderr = ''
  ff.stderr.on('data', d => { stderr += String(d) })
  let lastOut = -1
  let lastAdvance = Date.now()
  let worstGap = 0
  let started = false
  ff.stdout.on('data', d => {
    for (const m of String(d).matchAll(/out_time_us=(\d+)/g)) {
      const v = Number(m[1])
      if (v > lastOut) {
        const now = Date.now()
        if (started) worstGap = Math.max(worstGap, now - lastAdvance)
        if (v > 0) started = true
        lastOut = v
        lastAdvance = now
      }
    }
  })
  const ffExit = new Promise<number | null>(resolve => ff.once('exit', code => resolve(code)))
  const deadline = Date.now() + 15_000
  while (!started) {
    if (Date.now() > deadline) throw new Error(`ffmpeg never started playing: ${stderr.slice(0, 300)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  let runs = 0
  await fc.assert(fc.asyncProperty(caseArb, async c => {
    runs++
    await send(gw.port, c)
    return Date.now() - lastAdvance < STALL_MS
  }), {
    seed: SEED,
    numRuns: 1_000_000,
    interruptAfterTimeLimit: SECONDS * 1000,
    markInterruptAsFailure: false,
    endOnFailure: true
  })
  t.ok(runs > 50, `${runs} fuzz cases sent`)
  const code = await ffExit
  t.equal(code, 0, `ffmpeg played to the end (stderr: ${stderr.slice(0, 300)})`)
  t.ok(worstGap < STALL_MS, `the healthy player never stalled (worst progress gap ${worstGap} ms)`)
  t.same(uncaught, [], 'the process never threw')
  // Everything the fuzzer opened is reaped (pairing window and header timeout are 2 s here).
  const until = Date.now() + 8000
  for (;;) {
    const active = (await gw.metrics.tunnelsActive.get()).values.reduce((n, v) => n + v.value, 0)
    if (active === 0 && gw.relay.pendingPostCount === 0) break
    if (Date.now() > until) { t.fail(`tunnels still open after the fuzz: ${active}`); break }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
})
