/**
 * Admission of a client request (src/session/admission.ts) as a table: request and session state →
 * forward (with the request as the backend gets it) or the gateway's answer (status, code, headers),
 * or close; the order of the checks; the request given is never changed. And the rate bucket.
 */
import t from 'tap'
import { buildConfig } from '../../../src/config/config.js'
import { resolveRoute } from '../../../src/backends/routes.js'
import { admit, RequestRate, type AdmissionContext, type ClientRequest } from '../../../src/session/admission.js'
import type { Header } from '../../../src/tunnel/codec/rtsp-message.js'

const config = buildConfig([{
  workers: 0,
  backends: [{ name: 'a', url: 'rtsp://127.0.0.1:1001' }, { name: 'b', url: 'rtsp://127.0.0.1:1002' }],
  routes: [{ path: '/', backends: ['a'] }, { path: '/cams', backends: ['b'] }]
}])
const root = resolveRoute(config.routes, '/x')!
const cams = resolveRoute(config.routes, '/cams/1')!
const none = { has: () => false }

function req (method: string, uri: string, headers: Header[] = [], version = 'RTSP/1.0'): ClientRequest {
  return {
    kind: 'request',
    method,
    uri,
    version,
    headers: [['CSeq', '3'], ...headers],
    body: Buffer.alloc(0),
    raw: Buffer.alloc(0)
  }
}
const ctx = (over: Partial<AdmissionContext> = {}): AdmissionContext =>
  ({
    config,
    entryPath: '/cams/1',
    rateOk: true,
    live: false,
    route: null,
    backendChosen: false,
    granted: none,
    ...over
  })

interface Row {
  name: string
  req: ClientRequest
  ctx?: Partial<AdmissionContext>
  /** Expected decision (t.match: only the fields named). */
  want: Record<string, unknown>
}

const rows: Row[] = [
  {
    name: 'a DESCRIBE on a route is forwarded with its route and path',
    req: req('DESCRIBE', 'rtsp://gw/cams/1'),
    want: { kind: 'forward', route: cams, path: '/cams/1', req: { uri: 'rtsp://gw/cams/1' } }
  },
  {
    name: 'rate limit first (even before the version)',
    req: req('OPTIONS', 'rtsp://gw/x', [], 'RTSP/2.0'),
    ctx: { rateOk: false },
    want: {
      kind: 'answer',
      status: 503,
      code: 'TG_ERR_RTSP_RATE_LIMITED',
      limit: 'limits.rtspRequestsPerSecond',
      headers: [['Retry-After', '1']]
    }
  },
  {
    name: 'another RTSP version: 505',
    req: req('OPTIONS', 'rtsp://gw/x', [], 'RTSP/2.0'),
    want: { kind: 'answer', status: 505, code: 'TG_ERR_RTSP_VERSION' }
  },
  {
    name: 'an HTTP request inside the stream: close',
    req: req('POST', '/x', [], 'HTTP/1.0'),
    want: { kind: 'close', code: 'TG_ERR_TUN_SAME_CONNECTION' }
  },
  {
    name: 'the live delegate takes any version',
    req: req('PLAY', 'rtsp://gw/cams/1', [], 'RTSP/2.0'),
    ctx: { live: true },
    want: { kind: 'delegate' }
  },
  {
    name: 'Proxy-Require: 551 naming what is unsupported',
    req: req('OPTIONS', 'rtsp://gw/x', [['Proxy-Require', 'a, ,b']]),
    want: { kind: 'answer', status: 551, code: 'TG_ERR_RTSP_PROXY_REQUIRE', headers: [['Unsupported', 'a, b']] }
  },
  {
    name: 'Proxy-* headers never reach the backend',
    req: req('OPTIONS', 'rtsp://gw/x', [['Proxy-Authorization', 'x'], ['Proxy-Require', ' ']]),
    want: { kind: 'forward', req: { headers: [['CSeq', '3']] } }
  },
  {
    name: 'a bad URL: 400',
    req: req('DESCRIBE', 'rtsp://gw/a b'),
    want: { kind: 'answer', status: 400, code: 'TG_ERR_RTSP_BAD_URL' }
  },
  {
    name: 'the URL is made canonical, the token dropped',
    req: req('DESCRIBE', 'rtsp://gw/cams/./1?token=s3cret'),
    want: { kind: 'forward', path: '/cams/1', req: { uri: 'rtsp://gw/cams/1' } }
  },
  {
    name: 'headers a backend could read another way: 400',
    req: req('DESCRIBE', 'rtsp://gw/x', [['CSeq', '4']]),
    want: { kind: 'answer', status: 400, code: 'TG_ERR_RTSP_AMBIGUOUS' }
  },
  {
    name: 'a path outside the token\'s: 403, the Session echoed',
    req: req('DESCRIBE', 'rtsp://gw/x', [['Session', 'S1']]),
    ctx: { allowedPath: '/cams' },
    want: { kind: 'answer', status: 403, code: 'TG_ERR_AUTH_FORBIDDEN', headers: [['Session', 'S1']] }
  },
  {
    name: 'inside the token\'s path: forwarded',
    req: req('DESCRIBE', 'rtsp://gw/cams/1'),
    ctx: { allowedPath: '/cams' },
    want: { kind: 'forward' }
  },
  {
    name: 'OPTIONS * routes by the GET\'s path, before any URL even with a token',
    req: req('OPTIONS', '*'),
    ctx: { allowedPath: '/cams' },
    want: { kind: 'forward', route: cams }
  },
  {
    name: 'another route than the session\'s: 404',
    req: req('DESCRIBE', 'rtsp://gw/x'),
    ctx: { route: cams },
    want: { kind: 'answer', status: 404, code: 'TG_ERR_RTSP_NO_ROUTE' }
  },
  {
    name: 'OPTIONS * with no route before any backend: the gateway answers 200',
    req: req('OPTIONS', '*'),
    ctx: { route: cams, entryPath: '/x' },
    want: {
      kind: 'answer',
      status: 200,
      code: null,
      headers: [['Public', 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER']]
    }
  },
  {
    name: 'OPTIONS * with no route once a backend is chosen: 404',
    req: req('OPTIONS', '*'),
    ctx: { route: cams, entryPath: '/x', backendChosen: true },
    want: { kind: 'answer', status: 404 }
  },
  {
    name: 'SETUP without a TCP transport: 461',
    req: req('SETUP', 'rtsp://gw/x/t1', [['Transport', 'RTP/AVP;unicast;client_port=5000-5001']]),
    want: { kind: 'answer', status: 461, code: 'TG_ERR_RTSP_TRANSPORT' }
  },
  { name: 'SETUP without Transport: 461', req: req('SETUP', 'rtsp://gw/x/t1'), want: { kind: 'answer', status: 461 } },
  {
    name: 'SETUP: Transport cut to interleaved TCP',
    req: req('SETUP', 'rtsp://gw/x/t1',
      [['Transport', 'RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1']]),
    want: {
      kind: 'forward',
      req: { headers: [['CSeq', '3'], ['Transport', /^RTP\/AVP\/TCP;unicast;interleaved=0-1$/]] }
    }
  },
  {
    name: 'a Session the backend never granted: 454',
    req: req('PLAY', 'rtsp://gw/x', [['Session', 'S9;timeout=60']]),
    want: { kind: 'answer', status: 454, code: 'TG_ERR_RTSP_SESSION', headers: [['Session', 'S9;timeout=60']] }
  },
  {
    name: 'a granted Session: forwarded',
    req: req('PLAY', 'rtsp://gw/x', [['Session', 'S1']]),
    ctx: { granted: new Set(['S1']), route: root },
    want: { kind: 'forward', route: root }
  }
]

t.test('request → decision', async t => {
  for (const row of rows) {
    const r = row.req
    const before = JSON.stringify(r)
    t.match(admit(r, ctx(row.ctx)), row.want, row.name)
    t.equal(JSON.stringify(r), before, `${row.name}: the request given is unchanged`)
  }
})

t.test('the rate bucket: a burst, then the rate; 0 = unlimited', async t => {
  const limits = { rtspRequestsPerSecond: 10, rtspRequestBurst: 3 }
  const r = new RequestRate()
  t.same([r.take(limits, 0), r.take(limits, 0), r.take(limits, 0), r.take(limits, 0)], [true, true, true, false],
    'the burst, then no more')
  t.equal(r.take(limits, 50), false, 'half a token after 50 ms')
  t.equal(r.take(limits, 100), true, 'one token after 100 ms')
  t.equal(r.take(limits, 10_000), true)
  t.equal(r.take(limits, 10_000), true)
  t.equal(r.take(limits, 10_000), true)
  t.equal(r.take(limits, 10_000), false, 'never more than the burst saved up')
  const off = new RequestRate()
  for (let i = 0; i < 100; i++) {
    if (!off.take({ rtspRequestsPerSecond: 0, rtspRequestBurst: 0 }, 0)) t.fail('rate 0 limits nothing')
  }
})
