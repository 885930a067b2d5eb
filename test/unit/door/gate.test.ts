/**
 * The gate's decisions with real scrypt (small N) and a clock of its own: back-off per address and
 * per user without running scrypt, the cap on verifications in flight, unknown users costing what
 * a wrong password costs, cached successes not skipping the back-off, and log lines that never
 * carry a secret.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import pino from 'pino'
import { buildConfig } from '../../../src/config/config.js'
import { createMetrics, type GatewayMetrics } from '../../../src/core/metrics.js'
import { hashPassword } from '../../../src/door/auth.js'
import { Gate, whenDecided, type GateRequest, type GateVerdict } from '../../../src/door/gate.js'
import { signHmacToken } from '../../../src/tunnel/codec/access.js'

const SECRET = 'gate-test-secret-0123456789'
const HASHES = { alice: hashPassword('alice-pw', 1024), bob: hashPassword('bob-pw', 1024) }
const basic = (user: string, pw: string): [string, string] =>
  ['Authorization', `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`]

interface GateUnderTest { gate: Gate, metrics: GatewayMetrics, clock: { now: number }, log: () => string }

function makeGate (auth: Record<string, unknown> = {}): GateUnderTest {
  const config = buildConfig([{
    auth: {
      basic: [{ user: 'alice', hash: HASHES.alice }, { user: 'bob', hash: HASHES.bob }],
      tokenSecrets: [SECRET],
      backoffMs: 1_000,
      backoffMaxMs: 4_000,
      ...auth
    }
  }])
  const metrics = createMetrics({ defaultMetrics: false })
  let text = ''
  const logger = pino({ level: 'debug' }, new Writable({ write (chunk, _enc, cb) { text += String(chunk); cb() } }))
  const clock = { now: 1_700_000_000_000 }
  return { gate: new Gate(config, metrics, logger, () => clock.now), metrics, clock, log: () => text }
}

const req = (client: string, headers: Array<[string, string]>, extra: Partial<GateRequest> = {}): GateRequest =>
  ({ client, headers, target: '/cam1', path: '/cam1', transport: 'http-tunnel', ...extra })
const decide = async (gate: Gate, r: GateRequest): Promise<GateVerdict> => await gate.check(r)
const retry = (v: GateVerdict): string | undefined =>
  v.ok ? undefined : v.headers.find(([k]) => k === 'Retry-After')?.[1]

async function value (m: GatewayMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const got = await m.registry.getSingleMetric(name)!.get()
  const matches = (v: { labels: object }): boolean =>
    Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)
  return got.values.filter(matches).reduce((n, v) => n + v.value, 0)
}

t.test('per address: N failures, then 429 + Retry-After growing, with no scrypt run; success after the ' +
  'delay', async t => {
  const { gate, metrics, clock } = makeGate({ maxFailuresPerAddress: 3, maxFailuresPerUser: 100 })
  for (let i = 0; i < 3; i++) t.match(await decide(gate, req('192.0.2.1', [basic('alice', `guess-${i}`)])), { ok: false, status: 401, code: 'TG_ERR_AUTH_REQUIRED' }, `guess ${i}: 401`)
  t.equal(gate.basic.verifications, 3, 'three scrypt runs')
  const refused = await decide(gate, req('192.0.2.1', [basic('alice', 'guess-3')]))
  t.match(refused, { ok: false, status: 429, code: 'TG_ERR_AUTH_BACKOFF', statusText: 'Too Many Requests' })
  t.equal(retry(refused), '1', 'Retry-After: 1 s')
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'alice-pw')])), { ok: false, status: 429 },
    'even the right password is refused while the address is backed off')
  t.equal(gate.basic.verifications, 3, 'no scrypt run for refused attempts')
  t.match(await decide(gate, req('192.0.2.2', [basic('alice', 'alice-pw')])), { ok: true, user: 'alice' },
    'another address is not affected')
  clock.now += 1_000
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'guess-4')])), { ok: false, status: 401 },
    'after the delay: checked again (and wrong)')
  const longer = await decide(gate, req('192.0.2.1', [basic('alice', 'guess-5')]))
  t.equal(retry(longer), '2', 'the next refusal is longer (2 s)')
  clock.now += 2_000
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'guess-6')])), { status: 401 })
  t.equal(retry(await decide(gate, req('192.0.2.1', [basic('alice', 'x')]))), '4', '4 s: the maximum')
  clock.now += 4_000
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'guess-7')])), { status: 401 })
  t.equal(retry(await decide(gate, req('192.0.2.1', [basic('alice', 'x')]))), '4', 'stays at auth.backoffMaxMs')
  clock.now += 4_000
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'alice-pw')])), { ok: true },
    'the right password after the delay')
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'wrong')])), { status: 401 },
    'a success reset the count: one failure is a 401 again')
  t.ok(await value(metrics, 'tunnelgate_errors_total', { code: 'TG_ERR_AUTH_BACKOFF' }) >= 5,
    'TG_ERR_AUTH_BACKOFF counted')
  t.ok(await value(metrics, 'tunnelgate_limit_hits_total', { limit: 'auth.maxFailuresPerAddress' }) >= 5,
    'limit hit counted by setting')
})

t.test('per user: failures from many addresses back the user off for new addresses, not for ones it signed in ' +
  'from', async t => {
  const { gate, metrics } = makeGate({ maxFailuresPerAddress: 100, maxFailuresPerUser: 4 })
  t.match(await decide(gate, req('192.0.2.10', [basic('bob', 'bob-pw')])), { ok: true },
    'bob signs in from his own address')
  for (let i = 0; i < 4; i++) t.match(await decide(gate, req(`198.51.100.${i}`, [basic('bob', 'guess')])), { status: 401 })
  const before = gate.basic.verifications
  t.match(await decide(gate, req('198.51.100.99', [basic('bob', 'bob-pw')])),
    { ok: false, status: 429, code: 'TG_ERR_AUTH_BACKOFF' },
    'a fifth address for bob: 429 (per user), even with the right password')
  t.match(await decide(gate, req('198.51.100.99', [basic('alice', 'alice-pw')])), { ok: true },
    'the same address for another user is fine')
  t.match(await decide(gate, req('192.0.2.10', [basic('bob', 'bob-pw')])), { ok: true },
    "bob's own address is not locked out by the attack")
  t.equal(gate.basic.verifications, before + 1, 'the refused attempt ran no scrypt (bob was cached, alice ran one)')
  t.equal(await value(metrics, 'tunnelgate_limit_hits_total', { limit: 'auth.maxFailuresPerUser' }), 1)
  // Unknown users are counted per user too (same answers as for a known user).
  for (let i = 0; i < 4; i++) await decide(gate, req(`203.0.113.${i}`, [basic('mallory', 'x')]))
  t.match(await decide(gate, req('203.0.113.99', [basic('mallory', 'x')])), { status: 429 },
    'an unknown user backs off like a known one')
})

t.test('unknown user and wrong password: the same path, one scrypt run each, the same answer', async t => {
  const { gate, metrics } = makeGate()
  const a = await decide(gate, req('192.0.2.1', [basic('alice', 'wrong')]))
  t.equal(gate.basic.verifications, 1, 'wrong password: one scrypt run')
  const b = await decide(gate, req('192.0.2.2', [basic('nobody', 'wrong')]))
  t.equal(gate.basic.verifications, 2, 'unknown user: one scrypt run too (dummy hash)')
  t.same(a, b, 'identical verdicts')
  t.equal(await value(metrics, 'tunnelgate_auth_password_checks_total', { result: 'fail' }), 2)
  t.match(await decide(gate, req('192.0.2.3', [basic('nobody', '')])), { status: 401 },
    'an unknown user never matches the dummy hash')
})

t.test('no credentials: 401 with a challenge, not a failure (players ask first without)', async t => {
  const { gate } = makeGate({ maxFailuresPerAddress: 2 })
  for (let i = 0; i < 10; i++) {
    const v = await decide(gate, req('192.0.2.1', []))
    t.match(v, { ok: false, status: 401, code: 'TG_ERR_AUTH_REQUIRED' })
    if (!v.ok && i === 0) {
      t.same(v.headers.map(([k, x]) => `${k}: ${x}`),
        ['WWW-Authenticate: Basic realm="tunnelgate"', 'WWW-Authenticate: Bearer realm="tunnelgate"'])
    }
  }
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'alice-pw')])), { ok: true },
    'ten unauthenticated GETs did not back the address off')
  t.equal(gate.basic.verifications, 1)
  t.match(await decide(gate, req('192.0.2.1', [['Authorization', 'Basic !!!']])), { status: 401 },
    'a malformed header is a failure')
  t.match(await decide(gate, req('192.0.2.1', [['Authorization', 'Digest x']])), { status: 401 })
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'alice-pw')])), { status: 429 },
    'two malformed headers back the address off')
  t.equal(gate.basic.verifications, 1, 'malformed headers ran no scrypt')
})

t.test('tokens are checked without scrypt and without back-off; a token for another path is 403', async t => {
  const { gate } = makeGate({ maxFailuresPerAddress: 1 })
  await decide(gate, req('192.0.2.1', [basic('alice', 'wrong')]))
  t.match(await decide(gate, req('192.0.2.1', [basic('alice', 'alice-pw')])), { status: 429 },
    'address backed off for passwords')
  const tok = signHmacToken(SECRET, '/cam1', 1_700_000_600)
  t.match(await decide(gate, req('192.0.2.1', [], { target: `/cam1?token=${tok}` })),
    { ok: true, tokenPath: '/cam1', tokenExpMs: 1_700_000_600_000 }, 'a valid token still opens (it cannot be guessed)')
  t.match(await decide(gate, req('192.0.2.1', [], { target: `/cam2?token=${tok}`, path: '/cam2' })), {
    ok: false,
    status: 403,
    code: 'TG_ERR_AUTH_FORBIDDEN'
  })
  t.match(await decide(gate, req('192.0.2.1', [['Authorization', 'Bearer nonsense']])), {
    ok: false,
    status: 401,
    code: 'TG_ERR_AUTH_TOKEN'
  })
  t.equal(gate.basic.verifications, 1)
})

t.test('the cap on verifications in flight: 503 + Retry-After over it; identical credentials share one ' +
  'run', async t => {
  const { gate, metrics } = makeGate({ maxVerifications: 1, maxFailuresPerAddress: 0, maxFailuresPerUser: 0 })
  const first = gate.check(req('192.0.2.1', [basic('alice', 'guess-a')]))
  t.ok(first instanceof Promise, 'a password check is asynchronous')
  const second = await decide(gate, req('192.0.2.2', [basic('alice', 'guess-b')]))
  t.match(second, { ok: false, status: 503, code: 'TG_ERR_AUTH_BUSY', statusText: 'Service Unavailable' },
    'a second distinct verification over the cap: 503')
  t.equal(retry(second), '1')
  const same = gate.check(req('192.0.2.3', [basic('alice', 'guess-a')]))
  t.ok(same instanceof Promise, 'the same credentials while the first runs: waits for it, not refused')
  t.match(await first, { status: 401 }); t.match(await same, { status: 401 })
  t.equal(gate.basic.verifications, 1, 'one scrypt run for both')
  t.equal(await value(metrics, 'tunnelgate_limit_hits_total', { limit: 'auth.maxVerifications' }), 1)
  t.match(await decide(gate, req('192.0.2.2', [basic('alice', 'alice-pw')])), { ok: true }, 'free again once it ended')
})

t.test('a cached success does not skip the back-off', async t => {
  const { gate } = makeGate({ maxFailuresPerAddress: 2 })
  t.match(await decide(gate, req('192.0.2.5', [basic('alice', 'alice-pw')])), { ok: true },
    'alice signs in (her credentials are now cached)')
  for (let i = 0; i < 2; i++) await decide(gate, req('192.0.2.66', [basic('alice', `guess-${i}`)]))
  t.match(await decide(gate, req('192.0.2.66', [basic('alice', 'alice-pw')])), { status: 429 },
    'the backed-off address cannot test a guess against the cache')
  t.match(await decide(gate, req('192.0.2.5', [basic('alice', 'alice-pw')])), { ok: true },
    'the cache still serves her own address')
})

t.test('the check runs off the event loop: other work runs while scrypt does', async t => {
  const { gate } = makeGate()
  // A realistic cost (the hash-password default); counted in event-loop turns, not timed.
  const slow = new Gate(buildConfig([{ auth: { basic: [{ user: 'carol', hash: hashPassword('carol-pw') }] } }]),
    createMetrics({ defaultMetrics: false }), pino({ level: 'silent' }))
  let turns = 0
  let decided = false
  const spin = (): void => { if (!decided) { turns++; setImmediate(spin) } }
  setImmediate(spin)
  const v = await slow.check(req('192.0.2.1', [basic('carol', 'wrong')]))
  decided = true
  t.match(v, { status: 401 })
  t.ok(turns >= 3, `${turns} event-loop turns ran during one verification`)
  t.ok(gate.enabled)
})

t.test('whenDecided: at once for a ready verdict; never for a socket that closed meanwhile', async t => {
  const seen: string[] = []
  const sock = { destroyed: false, destroy () { this.destroyed = true } }
  whenDecided(sock, { ok: true }, () => seen.push('ready'))
  t.same(seen, ['ready'], 'synchronously')
  whenDecided(sock, Promise.resolve({ ok: true }), () => seen.push('late'))
  sock.destroyed = true
  await new Promise(resolve => setImmediate(resolve))
  t.same(seen, ['ready'], 'the closed socket got nothing')
  const failing = { destroyed: false, destroy () { this.destroyed = true } }
  whenDecided(failing, Promise.reject(new Error('verification failed')), () => seen.push('never'))
  const throwing = { destroyed: false, destroy () { this.destroyed = true } }
  whenDecided(throwing, Promise.resolve({ ok: true }), () => { throw new Error('handler bug') })
  await new Promise(resolve => setImmediate(resolve))
  t.ok(failing.destroyed && throwing.destroyed,
    'a failed verification or a throwing handler closes that socket, nothing reaches the process')
})

t.test('log lines never carry a password, an Authorization value or a token, nor an unknown user name', async t => {
  const { gate, log } = makeGate({ maxFailuresPerAddress: 2 })
  const tok = signHmacToken(SECRET, '/other', 1_700_000_600)
  const headers: Array<[string,
    string]> = [basic('alice', 'Sup3rSecretGuess'), basic('Hunter2IsMyPassword', 'x'),
    ['Authorization', 'Bearer forged.token.value']]
  for (const h of headers) await decide(gate, req('192.0.2.1', [h]))
  await decide(gate, req('192.0.2.1', [], { target: `/cam1?token=${tok}` }))
  await decide(gate, req('192.0.2.1', [basic('alice', 'alice-pw')]))
  const text = log()
  t.ok(text.includes('TG_ERR_AUTH_BACKOFF') && text.includes('"user":"alice"'),
    'the lines are there, with the configured user named')
  for (const secret of ['Sup3rSecretGuess', 'alice-pw', 'Hunter2IsMyPassword', 'forged.token.value', tok,
    ...headers.map(h => h[1].split(' ')[1]!)]) t.notOk(text.includes(secret), `no '${secret.slice(0, 16)}…' in the log`)
  t.ok(text.includes('(unknown)'), 'an unknown user is logged as (unknown)')
})
