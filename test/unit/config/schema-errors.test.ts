/**
 * The schema library's errors as the configuration's messages (src/config/schema-errors.ts): one case
 * per kind of error, the key spelled as in the file, and no secret in a message.
 */
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { buildConfig } from '../../../src/config/config.js'
import { describeError } from '../../../src/config/schema-errors.js'

const refusal = (layer: Record<string, unknown>): string => {
  try { buildConfig([layer]) } catch (err) { return (err as Error).message }
  return 'accepted'
}

const cases: Array<[string, Record<string, unknown>, string]> = [
  ['unknown key in a list entry', { routes: [{ path: '/', backend: [] }] },
    "'routes[0].backend' is not a known setting"],
  ['unknown key in a group of a group', { balancer: { promql: { uri: '' } } },
    "'balancer.promql.uri' is not a known setting"],
  ['a required field missing', { backends: [{ name: 'a' }] }, "'backends[0].url' is required and must be a string"],
  ['a group given a value', { tunnel: 5 }, "'tunnel' must be an object"],
  ['a list entry of the wrong type', { backends: [5] }, "'backends[0]' must be an rtsp:// URL or an object with a url"],
  ['a list given a value', { backends: 'rtsp://a:1' }, "'backends' must be a list"],
  ['a list that must not be empty', { routes: [] }, "'routes' must be a non-empty list"],
  ['an entry of a list of plain values: said at the list', { watch: { streams: ['/a', 'b'] } },
    "'watch.streams' must be a list of stream paths starting with '/'"],
  ['an entry with a hint of its own: said at the entry', { auth: { tokenSecrets: [7] } },
    "'auth.tokenSecrets[0]' must be a string of at least 16 characters"],
  ['a floor above 1', { limits: { httpHeadBytes: 12 } }, "'limits.httpHeadBytes' must be at least 256 (got 12)"],
  ['a count below 0', { limits: { maxTunnels: -1 } },
    "'limits.maxTunnels' must be between 0 and 9007199254740991 (got -1)"],
  ['a positive count at 0', { tunnel: { pairingTimeoutMs: 0 } },
    "'tunnel.pairingTimeoutMs' must be between 1 and 9007199254740991 (got 0)"],
  ['past the maximum', { status: { streams: 1001 } }, "'status.streams' must be between 1 and 1000 (got 1001)"],
  ['not an integer', { live: { lingerMs: 1.5 } }, "'live.lingerMs' must be an integer (got 1.5)"],
  ['a number given as text', { ops: { port: '9180' } }, "'ops.port' must be an integer (got \"9180\")"],
  ['not a boolean', { watch: { enabled: 'yes' } }, "'watch.enabled' must be true or false"],
  ['not a string, no hint', { origin: { host: 5 } }, "'origin.host' must be a string"],
  ['a pattern with its hint', { websocket: { path: 'ws' } },
    "'websocket.path' must be a path starting with '/' (A-Z a-z 0-9 _ . ~ - /)"],
  ['a hint that shows the value', { backends: [{ url: 'rtsp://a:1', metricsBytes: 'a-b' }] },
    "'backends[0].metricsBytes' must be a Prometheus metric name (got \"a-b\")"],
  ['an empty string where one is needed', { host: '' }, "'host' must be a non-empty string"],
  ['three literals', { role: 'edge' }, "'role' must be 'all-in-one', 'portal' or 'relay'"],
  ['literals of two types', { routes: [{ path: '/', live: 1 }] }, "'routes[0].live' must be true, false or 'auto'"],
  ['a word or a number', { workers: 300 }, "'workers' must be 'auto' or an integer between 0 and 256 (got 300)"],
  ['zero or a range', { backend: { readBufferBytes: 512 } },
    "'backend.readBufferBytes' must be 0 or an integer between 1024 and 1048576 (got 512)"],
  ['an HTTP route backend entry', { httpRoutes: [{ path: '/a', backends: [{ url: 'http://a:1', weight: 0 }] }] },
    "'httpRoutes[0].backends[0].weight' must be between 1 and 1000 (got 0)"]
]

t.test('each kind of schema error says what is wrong, naming the key', async t => {
  for (const [name, layer, message] of cases) t.equal(refusal(layer), `config: ${message}`, name)
})

t.test('keys are spelled as in the file, escapes of the path undone', async t => {
  const schema = Type.Object({ list: Type.Array(Type.Object({ n: Type.Integer() }, { additionalProperties: false })) },
    { additionalProperties: false })
  const first = (v: unknown): string => describeError(schema, Value.Errors(schema, v).First()!).key
  t.equal(first({ list: [{ n: 1 }, { n: 'x' }] }), 'list[1].n')
  t.equal(first({ 'a/b~c': 1, list: [] }), 'a/b~c')
  t.equal(first({ list: [{ n: 1, 0: 2 }] }), 'list[0].0', 'a key that looks like an index is a key in an object')
  t.equal(refusal({ 0: 1 }), "config: '0' is not a known setting")
})

t.test('the schema comes first, then the rules between settings', async t => {
  const both = { limits: { minCookieLength: 10, maxCookieLength: 5 }, port: -1 }
  t.equal(refusal(both), "config: 'port' must be between 0 and 65535 (got -1)")
})

t.test('a refused secret or token is never repeated', async t => {
  for (const [layer, secret] of [
    [{ auth: { tokenSecrets: ['short-secret-1'] } }, 'short-secret-1'],
    [{ cluster: { acceptSecrets: ['short-secret-2'] } }, 'short-secret-2'],
    [{ ops: { token: 'with a space 0123456789' } }, 'with a space'],
    [{ ops: { token: 'short-token-3' } }, 'short-token-3'],
    // eslint-disable-next-line @typescript-eslint/no-loss-of-precision -- a number where a string belongs
    [{ cluster: { secret: 12345678901234567890 } }, '12345678901234567890']
  ] as const) {
    const message = refusal(layer)
    t.match(message, /^config: '/, message)
    t.notOk(message.includes(secret), `${secret} is not in: ${message}`)
  }
})
