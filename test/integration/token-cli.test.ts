/**
 * `tunnelgate token`: tokens minted by the compiled binary (secret from the environment or
 * stdin, never argv) open and play a tunnel through a gateway configured with the same secret;
 * a token for another path gets HTTP 403 (TG_ERR_AUTH_FORBIDDEN), an expired one HTTP 401
 * (TG_ERR_AUTH_TOKEN), as docs/security.md says. Bad options are refused with TG_ERR_CFG_INVALID.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Readable } from 'node:stream'
import { startTestGateway, errorCount } from '../helpers/gateway-harness.js'
import { GetLeg, TunnelClient, destroyAllClients, newCookie } from '../helpers/tunnel-client.js'
import { waitFor } from '../helpers/wait.js'
import { ScriptedBackend } from '../helpers/scripted-backend.js'
import { tokenMain, type TokenIo } from '../../src/ops/token-cli.js'
import { verifyToken } from '../../src/tunnel/codec/access.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SECRET = 'token-cli-secret-0123456789abcdef'
const now = (): number => Math.floor(Date.now() / 1000)

t.afterEach(() => destroyAllClients())

/** Run the compiled `tunnelgate token …`; the secret goes in `env` or on stdin. */
async function runBinary (
  args: string[],
  o: { env?: Record<string, string>, stdin?: string } = {}
): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, TUNNELGATE_TOKEN_SECRET: undefined, ...o.env }
  const child = spawn(process.execPath, ['bin/tunnelgate.js', 'token', ...args], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => {
    stdout += String(d)
  })
  child.stderr.on('data', d => {
    stderr += String(d)
  })
  child.stdin.end(o.stdin ?? '')
  const code = await new Promise<number | null>(resolve => child.once('exit', c => resolve(c)))
  return { code, stdout, stderr }
}

function io (
  o: { env?: Record<string, string>, stdin?: string, tty?: boolean, now?: number } = {}
): TokenIo & { outText: () => string, errText: () => string } {
  let out = ''
  let err = ''
  const stdin = Object.assign(Readable.from(o.stdin === undefined ? [] : [Buffer.from(o.stdin)]), {
    isTTY: o.tty ?? false
  })
  return {
    env: o.env ?? {},
    stdin,
    out: s => {
      out += s
    },
    err: s => {
      err += s
    },
    ...(o.now === undefined ? {} : { now: () => o.now! }),
    outText: () => out,
    errText: () => err
  }
}

t.test('minted tokens verify: both formats, TTL and absolute expiry, secret from env or stdin', async t => {
  const a = io({ env: { TUNNELGATE_TOKEN_SECRET: SECRET } })
  const hmac = await tokenMain(['--path', '/live/cam1', '--ttl', '120'], a)
  t.match(hmac, /^tg1\.\d+\./, 'hmac by default')
  t.equal(a.outText(), hmac + '\n', 'only the token on stdout')
  t.match(
    a.errText(),
    /example: ffplay -rtsp_transport http 'rtsp:\/\/localhost\/live\/cam1\?token=tg1\./,
    'an example URL on stderr'
  )
  const v = verifyToken(hmac, [SECRET], now())
  t.ok(
    v.ok && v.path === '/live/cam1' && Math.abs(v.exp - (now() + 120)) <= 2,
    `verifies, bound to the path, expiry = now + ttl (${JSON.stringify(v)})`
  )
  const b = io({ stdin: SECRET + '\n' })
  const jwt = await tokenMain(
    [
      '--path',
      '/vod/',
      '--format',
      'jwt',
      '--expires',
      String(now() + 600),
      '--url',
      'rtsp://gw.example.net:8080',
      '--param',
      'k'
    ],
    b
  )
  t.equal(jwt.split('.').length, 3, 'a JWT')
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.same(Object.keys(claims).sort(), ['exp', 'iat', 'path'])
  t.same(
    verifyToken(jwt, [SECRET], now()),
    { ok: true, path: '/vod/', exp: now() + 600 },
    'verifies with the secret read from stdin'
  )
  t.match(b.errText(), /rtsp:\/\/gw\.example\.net:8080\/vod\/\?k=/, 'the example uses --url and --param')
  t.match(b.errText(), /secret from standard input/)
  const iso = await tokenMain(
    ['--path', '/x', '--expires', new Date((now() + 3000) * 1000).toISOString(), '--secret-env', 'MY_SECRET'],
    io({ env: { MY_SECRET: SECRET } })
  )
  const vi = verifyToken(iso, [SECRET], now())
  t.ok(vi.ok && Math.abs(vi.exp - (now() + 3000)) <= 1, '--expires as an ISO date; --secret-env names the variable')
  t.equal(verifyToken(hmac, ['another-secret-0123456789'], now()).ok, false, 'another secret does not verify it')
})

t.test('bad options and secrets are refused with TG_ERR_CFG_INVALID', async t => {
  const env = { TUNNELGATE_TOKEN_SECRET: SECRET }
  const cases: Array<[string, string[], Parameters<typeof io>[0], RegExp]> = [
    ['no path', [], { env }, /--path is required/],
    ['relative path', ['--path', 'live/cam1'], { env }, /--path must start with/],
    ['path with a query', ['--path', '/a?b=1'], { env }, /--path must/],
    ['bad format', ['--path', '/a', '--format', 'rs256'], { env }, /--format must be hmac or jwt/],
    ['ttl and expires', ['--path', '/a', '--ttl', '5', '--expires', String(now() + 50)], { env }, /not both/],
    ['zero ttl', ['--path', '/a', '--ttl', '0'], { env }, /not in the future/],
    ['negative ttl', ['--path', '/a', '--ttl', '-5'], { env }, /--ttl|ttl/],
    ['past expiry', ['--path', '/a', '--expires', String(now() - 10)], { env }, /not in the future/],
    ['too long', ['--path', '/a', '--ttl', String(400 * 86400)], { env }, /longer than/],
    ['bad date', ['--path', '/a', '--expires', 'tomorrow'], { env }, /Unix seconds or an ISO-8601 date/],
    ['short secret', ['--path', '/a'], { env: { TUNNELGATE_TOKEN_SECRET: 'short' } }, /at least 16 characters/],
    ['no secret on a terminal', ['--path', '/a'], { tty: true }, /set TUNNELGATE_TOKEN_SECRET/],
    ['empty stdin', ['--path', '/a'], { stdin: '' }, /at least 16 characters/],
    ['a --secret option', ['--path', '/a', '--secret', SECRET], { env }, /Unknown option '--secret'/],
    ['bad url', ['--path', '/a', '--url', 'rtsp://h/x'], { env }, /--url must be/]
  ]
  for (const [name, args, o, re] of cases) {
    await t.rejects(tokenMain(args, io(o)), { code: 'TG_ERR_CFG_INVALID', message: re }, name)
  }
})

t.test(
  'the compiled binary mints tokens the gateway admits; other path 403, expired 401',
  { skip: existsSync(`${ROOT}dist/ops/token-cli.js`) ? false : 'dist/ not built (npm test builds it)' },
  async t => {
    const backend = await ScriptedBackend.start()
    t.teardown(() => backend.close())
    const gw = await startTestGateway(t, [backend], { auth: { tokenSecrets: ['old-secret-0123456789abcdef', SECRET] } })
    const status = async (leg: GetLeg): Promise<string> =>
      await waitFor(() => leg.head?.statusLine ?? (leg.closed ? leg.rawBeforeHead : undefined), 'GET answer')

    // HMAC token, secret from the environment: the tunnel opens and plays.
    const r = await runBinary(['--path', '/live/cam1', '--ttl', '300', '--url', `rtsp://127.0.0.1:${gw.port}`], {
      env: { TUNNELGATE_TOKEN_SECRET: SECRET }
    })
    t.equal(r.code, 0, `exit 0 (${r.stderr})`)
    const token = r.stdout.trim()
    t.match(token, /^tg1\./)
    t.match(r.stderr, new RegExp(`rtsp://127\\.0\\.0\\.1:${gw.port}/live/cam1\\?token=tg1\\.`), 'prints an example URL')
    const c = await TunnelClient.open(gw.port, {
      cookie: newCookie(),
      path: `/live/cam1?token=${encodeURIComponent(token)}`,
      url: 'rtsp://gw.example.net/live/cam1'
    })
    t.equal(c.get.head?.statusLine, 'HTTP/1.0 200 OK', 'the GET with the minted token is admitted')
    const { session, play } = await c.play()
    t.ok(session !== '' && play.status === 200, 'and the tunnel plays')
    c.close()

    // JWT, secret on stdin, as a Bearer header for a prefix.
    const j = await runBinary(['--path', '/live/', '--format', 'jwt', '--ttl', '60'], { stdin: SECRET + '\n' })
    t.equal(j.code, 0, `exit 0 (${j.stderr})`)
    const jc = await TunnelClient.open(gw.port, {
      cookie: newCookie(),
      getHeaders: [['Authorization', `Bearer ${j.stdout.trim()}`]]
    })
    t.equal(
      (await jc.request('DESCRIBE', 'rtsp://gw.example.net/live/cam1')).status,
      200,
      'a JWT from stdin for /live/ admits /live/cam1'
    )
    jc.close()

    // A token for another path: 403.
    const other = await runBinary(['--path', '/vod'], { env: { TUNNELGATE_TOKEN_SECRET: SECRET } })
    t.equal(other.code, 0)
    const o = await GetLeg.open(gw.port, {
      cookie: newCookie(),
      path: `/live/cam1?token=${encodeURIComponent(other.stdout.trim())}`
    })
    t.match(await status(o), /^HTTP\/1\.0 403 /, 'token for another path: 403')
    t.equal(await errorCount(gw, 'TG_ERR_AUTH_FORBIDDEN'), 1, 'TG_ERR_AUTH_FORBIDDEN counted')

    // An expired token (minted with the clock two hours back, lifetime one minute): 401.
    const expired = await tokenMain(
      ['--path', '/live/cam1', '--ttl', '60'],
      io({ env: { TUNNELGATE_TOKEN_SECRET: SECRET }, now: now() - 7200 })
    )
    const e = await GetLeg.open(gw.port, {
      cookie: newCookie(),
      path: `/live/cam1?token=${encodeURIComponent(expired)}`
    })
    t.match(await status(e), /^HTTP\/1\.0 401 /, 'expired token: 401')
    // A token minted with a secret the gateway does not have: 401.
    const wrong = await runBinary(['--path', '/live/cam1'], {
      env: { TUNNELGATE_TOKEN_SECRET: 'not-the-gateway-secret-0123' }
    })
    const w = await GetLeg.open(gw.port, {
      cookie: newCookie(),
      path: `/live/cam1?token=${encodeURIComponent(wrong.stdout.trim())}`
    })
    t.match(await status(w), /^HTTP\/1\.0 401 /, 'another secret: 401')
    t.equal(await errorCount(gw, 'TG_ERR_AUTH_TOKEN'), 2, 'TG_ERR_AUTH_TOKEN counted for both')

    // The binary refuses with a coded message and exit 1.
    const bad = await runBinary(['--path', '/a'], {})
    t.equal(bad.code, 1, 'no secret: exit 1')
    t.match(bad.stderr, /^tunnelgate: token: the secret \(from standard input\) must have at least 16 characters/)
    t.equal(bad.stdout, '', 'nothing on stdout')
    o.destroy()
    e.destroy()
    w.destroy()
  }
)
