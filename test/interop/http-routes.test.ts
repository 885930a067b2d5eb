/**
 * HTTP routes against real peers: two nginx backends serving HLS and an MP4 made by
 * ffmpeg at test time; ffmpeg and GStreamer play HLS through the portal; curl range requests are
 * byte-exact; headers, affinity, p2c for new viewers, hostile paths (nothing dialled but configured
 * backends: a sentinel listener and the nginx logs), 502/504, tokens, metrics, /status.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { buildConfig } from '../../src/config/config.js'
import { signHmacToken } from '../../src/tunnel/codec/access.js'
import { haveNginx, makeMedia, startNginx, freePort, type Nginx } from '../helpers/nginx.js'
import { metric } from '../helpers/gateway-harness.js'

if (!haveNginx) throw new Error('nginx is not installed (apt-get install nginx; .ci/run installs it)')

async function gateway (t: Test, layer: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway(buildConfig([{
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    workers: 0,
    ops: { port: 0 },
    ...layer
  }]))
  t.teardown(async () => { await gw.close() })
  return gw
}

/** One raw request on its own connection; the status code of the answer (or 0 when closed). */
async function rawStatus (port: number, request: string): Promise<number> {
  return await new Promise(resolve => {
    const c = net.connect(port, '127.0.0.1')
    let got = ''
    c.on('data', d => {
      got += d.toString('latin1')
      if (/\r\n\r\n/.test(got)) {
        c.destroy()
        resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0))
      }
    })
    c.on('error', () => resolve(0))
    c.on('close', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0)))
    c.write(request)
    setTimeout(() => { c.destroy() }, 5000).unref()
  })
}

/** A child process run asynchronously (the gateway under test lives in this process's event loop). */
export async function run (cmd: string, args: string[],
  timeoutMs: number): Promise<{ status: number | null, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''; let stderr = ''
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { c.kill('SIGKILL') }, timeoutMs)
    c.on('close', code => { clearTimeout(timer); resolve({ status: code, stdout, stderr }) })
  })
}

async function curl (args: string[]): Promise<{ status: number, body: Buffer, headers: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-curl-'))
  try {
    const r = await run('curl', ['-s', '-o', join(dir, 'body'), '-D', join(dir, 'head'), '-w', '%{http_code}', ...args],
      20_000)
    let body = Buffer.alloc(0); let headers = ''
    try { body = readFileSync(join(dir, 'body')) } catch {}
    try { headers = readFileSync(join(dir, 'head'), 'utf8') } catch {}
    return { status: Number(r.stdout), body, headers }
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

const header = (headers: string, name: string): string | undefined =>
  new RegExp(`^${name}: *(.*?)\\r?$`, 'im').exec(headers)?.[1]

t.test('HTTP routes through the portal to two nginx backends', async t => {
  const media = makeMedia(t, 24)
  const a = await startNginx(t, media.root, 'a')
  const b = await startNginx(t, media.root, 'b')
  // A sentinel: anything that dials it is a leak (it is no configured backend).
  let sentinelHits = 0
  const sentinel = net.createServer(s => { sentinelHits++; s.destroy() })
  await new Promise<void>(resolve => sentinel.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { sentinel.close() })
  const sp = (sentinel.address() as net.AddressInfo).port
  // A silent backend: accepts and never answers (504), and a port nothing listens on (502).
  const silentSockets: net.Socket[] = []
  const silent = net.createServer(s => { silentSockets.push(s); s.on('error', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of silentSockets) s.destroy(); silent.close() })
  const deadPort = await freePort()
  const gw = await gateway(t, {
    httpRoutes: [
      { path: '/hls', backends: [`${a.url}/hls`, `${b.url}/hls`] },
      { path: '/media', backends: [`${a.url}/media`, { url: `${b.url}/media`, name: 'web-b' }] },
      { path: '/dead', backends: [`http://127.0.0.1:${deadPort}`] },
      { path: '/silent', backends: [`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`] },
      { path: '/redir', backends: [`${a.url}`] },
      // The same servers under fresh names: load figures that only the affinity test moves.
      { path: '/aff', backends: [{ url: `${a.url}/hls`, name: 'aff-a' }, { url: `${b.url}/hls`, name: 'aff-b' }] }
    ],
    httpProxy: { responseTimeoutMs: 1000, connectTimeoutMs: 1000, failureCooldownMs: 2000 }
  })
  const base = `http://127.0.0.1:${gw.port}`
  const both = (): Array<Record<string, string>> => [...a.accessLog(), ...b.accessLog()]

  await t.test('ffmpeg plays the HLS stream through the portal for >= 10 s', async t => {
    const r = await run('ffmpeg',
      ['-hide_banner', '-v', 'error', '-nostats', '-i', `${base}/hls/stream.m3u8`, '-t', '10', '-f', 'null', '-',
        '-progress', 'pipe:1'],
      60_000)
    t.equal(r.status, 0, `ffmpeg exit 0 (${r.stderr.slice(0, 300)})`)
    const outUs = Math.max(...[...r.stdout.matchAll(/out_time_us=(\d+)/g)].map(m => Number(m[1])))
    t.ok(outUs >= 9_900_000, `ffmpeg decoded ${outUs / 1e6} s`)
    const segs = both().filter(l => /Lavf/.test(l.request ?? '') || /seg\d+\.ts/.test(l.request ?? ''))
    t.ok(segs.length >= 10, `${segs.length} segment requests reached the backends`)
    t.equal(r.stderr.trim(), '', 'no error output')
  })

  await t.test('GStreamer (souphttpsrc ! hlsdemux) plays the stream through the portal', async t => {
    const before = both().filter(l => /seg\d+\.ts/.test(l.request ?? '')).length
    const r = await run('gst-launch-1.0',
      ['-q', 'souphttpsrc', `location=${base}/hls/stream.m3u8`, '!', 'hlsdemux', '!', 'tsdemux', '!', 'h264parse', '!',
        'avdec_h264', '!', 'fakesink', 'sync=false'],
      60_000)
    t.equal(r.status, 0, `gst-launch exit 0 (${(r.stderr + r.stdout).slice(0, 300)})`)
    const segs = both().filter(l => /seg\d+\.ts/.test(l.request ?? '')).length - before
    t.ok(segs >= media.segments,
      `GStreamer fetched ${segs} of ${media.segments} one-second segments (>= 10 s) through the portal`)
  })

  await t.test('curl range requests on the MP4 get byte-exact 206 answers', async t => {
    const f = media.mp4Bytes
    for (const [range, from,
      to] of [['0-99', 0, 99], ['1000-4999', 1000, 4999], [`${f.length - 10}-`, f.length - 10, f.length - 1],
        ['-500', f.length - 500, f.length - 1]] as Array<[string, number, number]>) {
      const r = await curl(['-r', range, `${base}/media/clip.mp4`])
      t.equal(r.status, 206, `range ${range}: 206`)
      t.equal(header(r.headers, 'content-range'), `bytes ${from}-${to}/${f.length}`, `range ${range}: Content-Range`)
      t.ok(r.body.equals(f.subarray(from, to + 1)), `range ${range}: ${r.body.length} bytes equal to the file`)
    }
    const whole = await curl([`${base}/media/clip.mp4`])
    t.equal(whole.status, 200)
    t.ok(whole.body.equals(f), `whole file (${f.length} bytes) byte-exact`)
    const unsat = await curl(['-r', `${f.length + 10}-`, `${base}/media/clip.mp4`])
    t.equal(unsat.status, 416, 'unsatisfiable range: 416 from the backend, passed through')
  })

  await t.test('Host, X-Forwarded-*, hop-by-hop headers, affinity cookie not forwarded', async t => {
    const r = await curl(['-H', 'Connection: keep-alive, X-Hop', '-H', 'X-Hop: secret', '-H',
      'Proxy-Authorization: Basic eDp5', '-H', 'X-Forwarded-For: 6.6.6.6', '-H',
      'Cookie: tg_http=00000000000000000000000000000000.nope; app=1', `${base}/hls/stream.m3u8`])
    t.equal(r.status, 200)
    const served = header(r.headers, 'x-backend') === 'a' ? a : b
    const line = served.accessLog().filter(l => l.request === 'GET /hls/stream.m3u8 HTTP/1.1').at(-1)!
    t.match(line.host, /^127\.0\.0\.1:\d+$/, 'Host is the backend')
    t.not(line.host, `127.0.0.1:${gw.port}`)
    t.equal(line.xff, '127.0.0.1', 'X-Forwarded-For set by the portal (client value dropped)')
    t.equal(line.xfhost, `127.0.0.1:${gw.port}`, 'X-Forwarded-Host is the public host')
    t.equal(line.xfproto, 'http')
    t.equal(line.xhop, '-', 'a header named in Connection is dropped')
    t.equal(line.proxyauth, '-', 'Proxy-Authorization is dropped')
    t.equal(line.cookie, 'app=1', `the portal's affinity cookie is not forwarded, others are (${line.cookie})`)
    t.notOk(/^(keep-alive|transfer-encoding|proxy-connection):/im.test(r.headers.replace(/^connection:.*$/im, '')),
      'no hop-by-hop headers from the backend besides our own Connection')
  })

  await t.test('a viewer stays on one backend; a new viewer goes to the other (most room)', async t => {
    const jar1 = join(mkdtempSync(join(tmpdir(), 'tg-jar-')), 'j1')
    const jar2 = jar1.replace(/j1$/, 'j2')
    const seen1 = new Set<string>(); const seen2 = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const r = await curl(['-c', jar1, '-b', jar1, `${base}/aff/seg00${i}.ts`])
      t.equal(r.status, 200)
      seen1.add(header(r.headers, 'x-backend') ?? '?')
    }
    t.equal(seen1.size, 1, `viewer 1 stayed on ${[...seen1].join(',')}`)
    for (let i = 0; i < 4; i++) seen2.add(header((await curl(['-c', jar2, '-b', jar2, `${base}/aff/seg00${i}.ts`])).headers, 'x-backend') ?? '?')
    t.equal(seen2.size, 1, 'viewer 2 stayed on one backend')
    t.not([...seen2][0], [...seen1][0], 'the new viewer went to the backend with more room')
    const cookie = readFileSync(jar1, 'utf8')
    t.match(cookie, /\/aff\tFALSE\t0\ttg_http\t[0-9a-f]{32}\.[01]\n/,
      'affinity cookie with Path=/aff: an id and the backend\'s place in the route, nothing else')
    t.notMatch(cookie, /aff-[ab]|127\.0\.0\.1:|:\d{4,5}\b/, 'the cookie names no backend and no backend address')
  })

  await t.test('hostile paths get 400/404 and nothing else is dialled', async t => {
    const beforeA = a.accessLog().length; const beforeB = b.accessLog().length
    const hostile: Array<[string, number[]]> = [
      ['GET /hls/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/%5c..%5c..%5cetc HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/x%00.ts HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
      ['GET /hls/../secret HTTP/1.1\r\nHost: x\r\n\r\n', [404]],
      ['GET /hls/%2e%2e/secret HTTP/1.1\r\nHost: x\r\n\r\n', [404]],
      [`GET http://127.0.0.1:${sp}/hls/stream.m3u8 HTTP/1.1\r\nHost: 127.0.0.1:${sp}\r\n\r\n`, [400, 404]],
      [`GET http://127.0.0.1:${a.port}/hls/stream.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n`, [400, 404]],
      [`GET //127.0.0.1:${sp}/x HTTP/1.1\r\nHost: x\r\n\r\n`, [400, 404]],
      [`GET /hls//127.0.0.1:${sp}/x HTTP/1.1\r\nHost: 127.0.0.1:${sp}\r\n\r\n`, [200, 404]],
      [`CONNECT 127.0.0.1:${sp} HTTP/1.1\r\nHost: 127.0.0.1:${sp}\r\n\r\n`, [0, 400, 404, 405]],
      ['POST /hls/stream.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', [405]],
      ['GET /secret/stream.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n', [404]]
    ]
    for (const [req, want] of hostile) {
      const status = await rawStatus(gw.port, req)
      t.ok(want.includes(status), `${req.split('\r\n')[0]} → ${status}`)
    }
    // The same targets as later requests on one keep-alive connection (Node's parser, not the front door).
    const pipelined = await new Promise<string>(resolve => {
      const c = net.connect(gw.port, '127.0.0.1')
      let got = ''
      c.on('data', d => {
        got += d.toString('latin1')
        if ((got.match(/HTTP\/1\.1 \d{3} /g) ?? []).length >= 3) { c.destroy(); resolve(got) }
      })
      c.on('close', () => resolve(got))
      c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
        `GET http://127.0.0.1:${sp}/hls/stream.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n` +
        'GET /hls/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n')
      setTimeout(() => { c.destroy() }, 5000).unref()
    })
    const statuses = [...pipelined.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
    t.equal(statuses[0], 200, 'keep-alive: /healthz 200')
    t.ok([400, 404].includes(statuses[1]!), `keep-alive: absolute-form → ${statuses[1]}`)
    t.equal(statuses[2], 400, `keep-alive: %2e%2e above the root → 400 (${JSON.stringify(pipelined.slice(0, 600))})`)
    await new Promise(resolve => setTimeout(resolve, 200))
    t.equal(sentinelHits, 0, 'the sentinel was never dialled')
    const newLines = [...a.accessLog().slice(beforeA), ...b.accessLog().slice(beforeB)]
    t.notOk(newLines.some(l => /passwd|secret|\.\.|%2f|%5c|%00/i.test(l.request ?? '')),
      `no hostile target reached a backend (${newLines.map(l => l.request).join(' | ')})`)
    t.ok(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_BAD_PATH' }) >= 7,
      'TG_ERR_HTTP_BAD_PATH counted')
    t.ok(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_NO_ROUTE' }) >= 2,
      'TG_ERR_HTTP_NO_ROUTE counted')
    t.ok(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_METHOD' }) >= 1, 'TG_ERR_HTTP_METHOD counted')
  })

  await t.test('a backend redirect to its own address is rewritten (no backend address leaks)', async t => {
    const r = await curl([`${base}/redir/redirect-me`])
    t.equal(r.status, 302)
    t.equal(header(r.headers, 'location'), '/redir/hls/stream.m3u8', 'backend URL mapped back to the public prefix')
  })

  await t.test('upstream down → 502, silent upstream → 504, counted, the portal lives on', async t => {
    const dead = await curl([`${base}/dead/x.ts`])
    t.equal(dead.status, 502)
    t.match(dead.body.toString(), /could not be reached/)
    t.notMatch(dead.body.toString(), String(deadPort), 'no backend address in the answer')
    const slow = await curl([`${base}/silent/x.ts`])
    t.equal(slow.status, 504)
    t.equal(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_UPSTREAM' }), 1)
    t.equal(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_UPSTREAM_TIMEOUT' }), 1)
    t.equal(await metric(gw, 'tunnelgate_http_upstream_errors_total', { route: '/dead', kind: 'refused' }), 1)
    t.equal(await metric(gw, 'tunnelgate_http_upstream_errors_total', { route: '/silent', kind: 'timeout' }), 1)
    t.equal((await curl([`${base}/hls/stream.m3u8`])).status, 200, 'other routes still served')
  })

  await t.test('metrics with transport="http", /status (ops listener) lists the routes with their traffic', async t => {
    t.ok(await metric(gw, 'tunnelgate_http_requests_total', { transport: 'http', route: '/hls', status: '200' }) >= 20)
    t.ok(await metric(gw, 'tunnelgate_http_requests_total', { transport: 'http', route: '/media', status: '206' }) >= 4)
    t.ok(await metric(gw, 'tunnelgate_http_bytes_total',
      { transport: 'http', route: '/media', direction: 'backend_to_client' }) >= media.mp4Bytes.length)
    const ops = `http://127.0.0.1:${gw.opsPort}`
    const text = await (await fetch(`${ops}/metrics`)).text()
    t.match(text,
      /tunnelgate_http_requests_total\{transport="http",route="\/hls",backend="127\.0\.0\.1:\d+",status="200"\} \d+/)
    const s = await (await fetch(`${ops}/status`)).json() as {
      httpRoutes: Array<{
        path: string,
        requests: number,
        bytes: number,
        backends: Array<{ name: string, healthy: boolean, requests: number }>
      }>
    }
    const hls = s.httpRoutes.find(r => r.path === '/hls')!
    t.ok(hls.requests >= 20 && hls.bytes > 0, `/status: /hls ${hls.requests} requests, ${hls.bytes} bytes`)
    t.equal(hls.backends.length, 2)
    t.ok(hls.backends.every(x => x.requests > 0), 'both backends served /hls')
    t.same(s.httpRoutes.find(r => r.path === '/media')!.backends.map(x => x.name).sort(),
      ['127.0.0.1:' + a.port, 'web-b'].sort())
  })
})

t.test('tokens bound to a path, and Basic auth, on HTTP routes', async t => {
  const media = makeMedia(t, 4)
  const a: Nginx = await startNginx(t, media.root, 'a')
  const secret = 'http-route-test-secret'
  const gw = await gateway(t, {
    auth: { tokenSecrets: [secret] },
    httpRoutes: [{ path: '/hls', backends: [`${a.url}/hls`] }, { path: '/media', backends: [`${a.url}/media`] }, {
      path: '/open',
      backends: [`${a.url}/hls`],
      auth: false
    }]
  })
  const base = `http://127.0.0.1:${gw.port}`
  const exp = Math.floor(Date.now() / 1000) + 600
  t.equal((await curl([`${base}/hls/stream.m3u8`])).status, 401, 'no token: 401')
  t.equal((await curl([`${base}/hls/stream.m3u8?token=garbage`])).status, 401, 'bad token: 401')
  t.equal((await curl([`${base}/hls/stream.m3u8?token=${signHmacToken(secret, '/media', exp)}`])).status, 403,
    'token for another path: 403')
  t.equal((await curl([
    `${base}/hls/stream.m3u8?token=${signHmacToken(secret, '/hls', Math.floor(Date.now() / 1000) - 5)}`
  ])).status, 401, 'expired token: 401')
  const jar = join(mkdtempSync(join(tmpdir(), 'tg-jar-')), 'j')
  const ua = ['-A', 'same-player/1.0']
  const first = await curl([...ua, '-c', jar, '-b', jar,
    `${base}/hls/stream.m3u8?token=${signHmacToken(secret, '/hls', exp)}`])
  t.equal(first.status, 200, 'token for /hls: 200')
  const grant = first.headers.split(/\r?\n/).find(l => /^set-cookie: tg_grant=/i.test(l)) ?? ''
  t.match(grant, /^set-cookie: tg_grant=g1\.\d+\.[\w-]+\.[\w-]+; Path=\/hls; Max-Age=\d+; HttpOnly; SameSite=Strict$/i,
    'the answer sets an HttpOnly, SameSite grant cookie for the token\'s path')
  // An attacker who can only reproduce A's address and User-Agent inherits nothing (asked before A comes back with
  // its cookie).
  t.equal((await curl([...ua, `${base}/hls/seg000.ts`])).status, 401,
    'client B with A\'s address and User-Agent but no cookie: 401')
  t.equal((await curl([...ua, '-c', jar, '-b', jar, `${base}/hls/seg000.ts`])).status, 200,
    'A fetches a segment without the token (its grant cookie)')
  t.equal((await curl([...ua, '-H', `Cookie: tg_http=${'0'.repeat(32)}.0`, `${base}/hls/seg001.ts`])).status, 401,
    'nor with an affinity cookie it made up')
  t.equal((await curl([...ua, '-H', `Cookie: tg_grant=${signHmacToken(secret, '/hls', exp)}`,
    `${base}/hls/seg001.ts`])).status,
  401, 'a token is no grant (another signing domain)')
  const otherSecret = await curl([...ua, '-H',
    `Cookie: tg_grant=g1.${exp}.${Buffer.from('/hls').toString('base64url')}.${Buffer.alloc(32).toString('base64url')}`,
    `${base}/hls/seg001.ts`])
  t.equal(otherSecret.status, 401, 'a forged grant: 401')
  t.notOk(a.accessLog().some(l => /seg001/.test(l.request ?? '')),
    'none of the refused requests for seg001 reached the backend')
  t.equal((await curl([...ua, '-c', jar, '-b', jar, `${base}/hls/seg001.ts`])).status, 200, 'A still can (cookie)')
  // A client that keeps no cookies presents the token on every request.
  const tok = signHmacToken(secret, '/hls', exp)
  t.equal((await curl([`${base}/hls/stream.m3u8?token=${tok}`])).status, 200,
    'cookieless client: the playlist with its token')
  t.equal((await curl([`${base}/hls/seg002.ts?token=${tok}`])).status, 200,
    'cookieless client: a segment with its token')
  t.equal((await curl([`${base}/hls/seg002.ts`])).status, 401, 'cookieless client: a segment without it is refused')
  const forwarded = a.accessLog().filter(l => /seg00[0-2]/.test(l.request ?? ''))
  t.ok(forwarded.length >= 3 && forwarded.every(l => !/tg_grant|tg_http/.test(l.cookie ?? '')),
    'neither the grant nor the affinity cookie reaches the backend')
  // Real HLS players carry the playlist's cookies to its segments: they play with ?token= on the playlist alone.
  const ff = await run('ffmpeg',
    ['-hide_banner', '-v', 'error', '-nostats', '-i', `${base}/hls/stream.m3u8?token=${tok}`, '-f', 'null', '-',
      '-progress', 'pipe:1'],
    60_000)
  t.equal(ff.status, 0, `ffmpeg plays the token-protected HLS stream (${ff.stderr.slice(0, 300)})`)
  t.ok(Math.max(...[...ff.stdout.matchAll(/out_time_us=(\d+)/g)].map(m =>
    Number(m[1]))) >= (media.segments - 0.5) * 1e6,
  'every segment decoded')
  const gst = await run('gst-launch-1.0',
    ['-q', 'souphttpsrc', `location=${base}/hls/stream.m3u8?token=${tok}`, '!', 'hlsdemux', '!', 'tsdemux', '!',
      'h264parse', '!', 'avdec_h264', '!', 'fakesink', 'sync=false'],
    60_000)
  t.equal(gst.status, 0, `GStreamer (hlsdemux) plays it too (${(gst.stderr + gst.stdout).slice(0, 300)})`)
  t.ok(await metric(gw, 'tunnelgate_http_requests_total', { route: '/hls', status: '401' }) >= 6,
    'the refusals were answered by the portal')
  t.equal((await curl(['-H', `Authorization: Bearer ${signHmacToken(secret, '/hls/seg001.ts', exp)}`,
    `${base}/hls/seg001.ts`])).status,
  200, 'Bearer token for exactly that file')
  t.equal((await curl([`${base}/open/stream.m3u8`])).status, 200, 'auth: false route is open')
  const line = a.accessLog().find(l => /seg001/.test(l.request ?? ''))!
  t.equal(line.auth, '-', 'the Authorization header is not forwarded to the backend')
  t.ok(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_AUTH_FORBIDDEN' }) >= 1)
  t.ok(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_AUTH_TOKEN' }) >= 2)
})

t.test('limits: maxInFlight answers 503', async t => {
  const hold: net.Socket[] = []
  const stall = net.createServer(s => { hold.push(s); s.on('error', () => {}) })
  await new Promise<void>(resolve => stall.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of hold) s.destroy(); stall.close() })
  // no probes: every connection to the stall server is a request
  const gw = await gateway(t, {
    httpRoutes: [{
      path: '/s',
      backends: [`http://127.0.0.1:${(stall.address() as net.AddressInfo).port}`],
      maxInFlight: 1
    }],
    httpProxy: { responseTimeoutMs: 3000, probeIntervalMs: 0 }
  })
  const first = spawn('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${gw.port}/s/a`])
  t.teardown(() => { first.kill() })
  const deadline = Date.now() + 3000
  while (hold.length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(hold.length, 1, 'first request is in flight')
  const r = await curl([`http://127.0.0.1:${gw.port}/s/b`])
  t.equal(r.status, 503)
  t.equal(header(r.headers, 'retry-after'), '1')
  t.equal(await metric(gw, 'tunnelgate_errors_total', { code: 'TG_ERR_HTTP_BUSY' }), 1)
})
