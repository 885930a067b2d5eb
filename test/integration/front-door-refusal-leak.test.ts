/**
 * A connection the front door refuses (a malformed or oversized head, a bad cookie, a GET without
 * credentials, plain RTSP while gateway authentication is on) must be closed for good once the
 * client closes, even when the client sent more bytes after the refused head. The front door
 * pauses every socket once its head is read, and the refusal only ends it: the later bytes wait
 * unread in the paused stream, so the client's FIN never becomes 'end' and the socket is never
 * destroyed; TCP finishes the close and the process keeps the descriptor (found by the stack
 * fuzzer, test/fuzz/, as the portal's descriptors growing under fuzzed traffic).
 *
 * Each case: the head, and as soon as the refusal arrives (before the client has read the FIN that
 * came with it) a few more bytes, then the client closes. Afterwards the gateway's descriptors and
 * descriptors are back at their baseline (the gateway runs as a child process: a socket it never
 * destroys would also hold its in-process close forever).
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { hashPassword } from '../../src/door/auth.js'
import { GatewayStack } from '../fuzz/stack.js'
import { census } from '../fuzz/proc.js'
import { sampleWindow } from '../fuzz/resources.js'

/** Send `head`; on the first byte of the answer send `after` (unless empty), then let the connection close. */
function refused (port: number, head: string, after: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => s.write(head))
    let answer = ''
    s.on('data', d => {
      if (answer === '' && after !== '') s.write(after)
      answer += d.toString('latin1')
    })
    s.on('error', reject)
    // allowHalfOpen is off: the client ends its side when it reads the gateway's FIN.
    s.on('close', () => resolve(answer.split('\r\n')[0]!))
  })
}

const AFTER = 'more bytes after the refused head'

/**
 * Start a gateway process with `settings`; send each refusal once cleanly (warm-up), take the
 * baseline, send each `times` times with bytes after it; the gateway's descriptors (lowest over
 * a 2 s window) must come back to the baseline.
 */
async function check (
  t: Test,
  settings: Record<string, unknown>,
  cases: Array<{ what: string, head: string, status: RegExp }>,
  first?: (port: number) => Promise<unknown>,
  times = 5
): Promise<void> {
  const stack = await GatewayStack.start('all', settings)
  t.teardown(() => stack.stop())
  await first?.(stack.port)
  const gateway = stack.processes()
  for (const c of cases) t.match(await refused(stack.port, c.head, ''), c.status, `${c.what}: refused`)
  const [before] = await sampleWindow(gateway)
  for (const c of cases) for (let i = 0; i < times; i++) t.match(await refused(stack.port, c.head, AFTER), c.status, `${c.what}, then more bytes: refused`)
  let [now] = await sampleWindow(gateway)
  for (const deadline = Date.now() + 5000; now!.fds > before!.fds && Date.now() < deadline;) {
    [now] = await sampleWindow(gateway)
  }
  t.ok(
    now!.fds <= before!.fds,
    `descriptors back at the baseline: ${before!.fds} -> ${now!.fds}; held: ${
      JSON.stringify(census(now!.pid, stack.ports))}`
  )
  t.equal(stack.crash, null, 'the gateway did not crash')
}

t.test('refused heads followed by more bytes leave no descriptor behind', async t => {
  await check(t, {}, [
    { what: 'a malformed request line', head: 'NOT HTTP AT ALL\r\n\r\n', status: /^HTTP\/1\.0 400 / },
    {
      what: 'a head over limits.httpHeadBytes',
      head: `GET / HTTP/1.1\r\nX-Big: ${'b'.repeat(9000)}\r\n\r\n`,
      status: /^HTTP\/1\.0 431 /
    },
    {
      what: 'a tunnel GET with a cookie too short',
      head: 'GET /demo HTTP/1.0\r\nx-sessioncookie: abc\r\n\r\n',
      status: /^HTTP\/1\.0 400 /
    },
    {
      what: 'a tunnel POST without a cookie',
      head: 'POST /demo HTTP/1.0\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n',
      status: /^HTTP\/1\.0 400 /
    }
  ])
})

/** A plain RTSP session that stays open (the one session limits.maxTunnels allows). */
function holdSession (t: Test): (port: number) => Promise<void> {
  return port => new Promise(resolve => {
    const s = net.connect(port, '127.0.0.1', () => s.write('OPTIONS rtsp://gw/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n'))
    s.once('data', () => resolve())
    s.on('error', () => {})
    t.teardown(() => s.destroy())
  })
}

// The relay answers legs over its limits itself; the portal in front of workers and remote relay
// nodes has its own answer (refuseLeg) for the same limits.
t.test('legs the relay refuses over its limits, followed by more bytes, leave no descriptor behind', async t => {
  const settings = { limits: { maxTunnels: 1 }, tunnel: { idleTimeoutMs: 60_000 } }
  await check(
    t,
    settings,
    [
      {
        what: 'a tunnel GET over limits.maxTunnels',
        head: 'GET /demo HTTP/1.0\r\nx-sessioncookie: abcdefghijkl\r\n\r\n',
        status: /^HTTP\/1\.0 503 /
      },
      {
        what: 'plain RTSP over limits.maxTunnels',
        head: 'OPTIONS rtsp://gw/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n',
        status: /^RTSP\/1\.0 503 /
      }
    ],
    holdSession(t)
  )
})

t.test('plain RTSP over limits.maxTunnelsPerIp, followed by more bytes, leaves no descriptor behind', async t => {
  await check(
    t,
    { limits: { maxTunnelsPerIp: 1 }, tunnel: { idleTimeoutMs: 60_000 } },
    [
      {
        what: 'plain RTSP over limits.maxTunnelsPerIp',
        head: 'OPTIONS rtsp://gw/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n',
        status: /^RTSP\/1\.0 503 /
      }
    ],
    holdSession(t)
  )
})

t.test('refusals of gateway authentication followed by more bytes leave no descriptor behind', async t => {
  await check(t, { auth: { basic: [{ user: 'u', hash: hashPassword('p', 1024) }] } }, [
    {
      what: 'a tunnel GET without credentials',
      head: 'GET /demo HTTP/1.0\r\nx-sessioncookie: abcdefghijkl\r\n\r\n',
      status: /^HTTP\/1\.0 401 /
    },
    {
      what: 'plain RTSP with gateway authentication on',
      head: 'OPTIONS rtsp://gw/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n',
      status: /^RTSP\/1\.0 403 /
    }
  ])
})
