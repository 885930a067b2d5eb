/**
 * The one Transport codec (src/tunnel/codec/transport.ts) as the session, the live fan-out and the
 * origin use it: one parse (quotes respected), the session's TCP filter and interleaved channels,
 * the origin's choice, and the replies formatted from it read back the same; the Session header.
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {
  chooseTransport, filterTcpTransports, formatInterleavedTransport, formatTransport, parseInterleaved,
  parseSessionHeader,
  parseTransport, type TransportSpec
} from '../../../../src/tunnel/codec/transport.js'

t.test('parseTransport: specs, parameters, quotes', async t => {
  const value = ' RTP/AVP/TCP;unicast; interleaved = 0-1 ;mode="PLAY,RECORD", RTP/AVP;client_port=5000-5001;;'
  t.same(parseTransport(value), [
    {
      protocol: 'RTP/AVP/TCP',
      params: [
        { name: 'unicast', value: undefined, raw: 'unicast' },
        { name: 'interleaved', value: '0-1', raw: 'interleaved = 0-1' },
        { name: 'mode', value: '"PLAY,RECORD"', raw: 'mode="PLAY,RECORD"' }
      ],
      raw: 'RTP/AVP/TCP;unicast; interleaved = 0-1 ;mode="PLAY,RECORD"'
    },
    {
      protocol: 'RTP/AVP',
      params: [{ name: 'client_port', value: '5000-5001', raw: 'client_port=5000-5001' }],
      raw: 'RTP/AVP;client_port=5000-5001;;'
    }
  ])
  t.same(parseTransport('').map(s => s.protocol), [''])
})

t.test('one channel: the session reads n as n-n, the origin serves n, n+1', async t => {
  t.same(parseInterleaved('RTP/AVP/TCP;interleaved=4'), [4, 4])
  t.same(chooseTransport('RTP/AVP/TCP;interleaved=4')?.interleaved, [4, 5])
  t.equal(chooseTransport('RTP/AVP/TCP;interleaved=255'), undefined, '255 leaves no channel for RTCP')
  t.same(chooseTransport('RTP/AVP/TCP;interleaved = 6 - 7')?.interleaved, [6, 7], 'spaces as the session takes them')
  t.same(chooseTransport('RTP/AVP;unicast;client_port=5000')?.clientPort, [5000, 5001])
})

t.test('the origin\'s choice respects quotes and the last of a repeated parameter', async t => {
  t.same(chooseTransport('RTP/AVP/TCP;mode="PLAY,RECORD";interleaved=2-3'), undefined, 'a mode list is not PLAY')
  t.same(chooseTransport('RTP/AVP/TCP;destination="a,b";interleaved=2-3')?.interleaved, [2, 3],
    'a comma inside quotes is no new spec')
  t.same(chooseTransport('RTP/AVP/TCP;mode=record;mode=PLAY')?.lower, 'tcp')
  t.equal(chooseTransport('RTP/AVP/TCP;interleaved=x,RTP/AVP/TCP;multicast'), undefined)
  t.match(chooseTransport('RTP/AVP/TCP;interleaved=x,RTP/AVP;client_port=7000-7001'),
    { lower: 'udp', raw: 'RTP/AVP;client_port=7000-7001' })
})

t.test('formatted replies read back', async t => {
  t.equal(formatInterleavedTransport([0, 1]), 'RTP/AVP/TCP;unicast;interleaved=0-1', 'the live upstream\'s request')
  t.equal(formatInterleavedTransport([2, 3], { protocol: 'RTP/SAVP/TCP', ssrc: 0xdeadbeef }),
    'RTP/SAVP/TCP;unicast;interleaved=2-3;ssrc=DEADBEEF', 'a live viewer\'s reply')
  const channels = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
  fc.assert(fc.property(channels, fc.integer({ min: 0, max: 0xffffffff }), ([a, b], ssrc) => {
    const reply = formatTransport({ kind: 'tcp', rtpChannel: a, rtcpChannel: b }, ssrc)
    assert.deepEqual(parseInterleaved(reply), [a, b])
    assert.equal(filterTcpTransports(reply), reply)
    assert.deepEqual(chooseTransport(reply), { lower: 'tcp', interleaved: [a, b], raw: reply })
    const spec = parseTransport(reply)[0]!
    assert.equal(spec.params.find(p => p.name === 'ssrc')?.value, ssrc.toString(16).padStart(8, '0').toUpperCase())
  }), { numRuns: 500 })
  t.pass('500 replies')
})

t.test('any input: a parse, no throw; the TCP filter is idempotent and keeps only TCP specs', async t => {
  const part = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('RTP/AVP/TCP', 'RTP/AVP', 'rtp/avpf/tcp',
    'interleaved=0-1', 'destination=1.2.3.4', '"', ',', ';', 'mode="PLAY"', 'client_port=1-2'))
  fc.assert(fc.property(fc.array(part, { maxLength: 12 }), parts => {
    const value = parts.join('')
    parseTransport(value)
    chooseTransport(value)
    const r = parseInterleaved(value)
    if (r !== null) assert.ok(r[0] <= 255 && r[1] <= 255)
    const kept = filterTcpTransports(value)
    if (kept === null) return
    assert.equal(filterTcpTransports(kept), kept)
    const tcpOnly = (s: TransportSpec): boolean =>
      /\/tcp$/i.test(s.protocol) && !s.params.some(p => p.name === 'destination')
    assert.ok(parseTransport(kept).every(tcpOnly))
  }), { numRuns: 2000 })
  t.pass('2000 values')
})

t.test('filterTcpTransports', async (tt) => {
  const cases: Array<[string, string | null]> = [
    ['RTP/AVP;unicast;client_port=5000-5001', null],
    ['RTP/AVP/UDP;unicast;client_port=5000-5001', null],
    ['RTP/AVP;multicast', null],
    ['', null],
    ['RTP/AVP/TCP;unicast;interleaved=0-1', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
    ['RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1',
      'RTP/AVP/TCP;unicast;interleaved=0-1'],
    ['RTP/AVP/TCP;unicast;interleaved=0-1, RTP/AVP;unicast;client_port=6970-6971',
      'RTP/AVP/TCP;unicast;interleaved=0-1'],
    ['RTP/AVP/TCP;unicast;destination=203.0.113.9;interleaved=2-3', 'RTP/AVP/TCP;unicast;interleaved=2-3'],
    ['RTP/AVP/TCP;unicast;Destination;interleaved=2-3', 'RTP/AVP/TCP;unicast;interleaved=2-3'],
    ['rtp/avp/tcp;unicast', 'rtp/avp/tcp;unicast'],
    ['RTP/AVPF/TCP;unicast;interleaved=0-1,RTP/SAVP/TCP;unicast;interleaved=2-3',
      'RTP/AVPF/TCP;unicast;interleaved=0-1,RTP/SAVP/TCP;unicast;interleaved=2-3'],
    ['RTP/AVP/TCP;unicast;mode="PLAY";interleaved=0-1', 'RTP/AVP/TCP;unicast;mode="PLAY";interleaved=0-1'],
    ['RTP/AVP/TCP;unicast;destination="a,b";interleaved=0-1', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
    // live555 reply style (from the captures): destination removed, source kept
    ['RTP/AVP/TCP;unicast;destination=127.0.0.1;source=127.0.0.1;interleaved=0-1',
      'RTP/AVP/TCP;unicast;source=127.0.0.1;interleaved=0-1']
  ]
  for (const [input, expected] of cases) tt.equal(filterTcpTransports(input), expected, JSON.stringify(input))
  tt.equal(filterTcpTransports('RTP/AVP/TCP;' + 'x'.repeat(5000)), null, 'over MAX_TRANSPORT_VALUE')
})

t.test('parseInterleaved', async (tt) => {
  const cases: Array<[string, [number, number] | null]> = [
    ['RTP/AVP/TCP;unicast;interleaved=0-1', [0, 1]],
    ['RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=56E4871D;mode="PLAY"', [0, 1]],
    ['RTP/AVP/TCP;unicast;destination=127.0.0.1;source=127.0.0.1;interleaved=2-3', [2, 3]],
    ['RTP/AVP/TCP;unicast;Interleaved = 4 - 5', [4, 5]],
    ['RTP/AVP/TCP;interleaved=7', [7, 7]],
    ['RTP/AVP/TCP;interleaved=254-255', [254, 255]],
    ['RTP/AVP/TCP;interleaved=255-256', null],
    ['RTP/AVP/TCP;interleaved=a-b', null],
    ['RTP/AVP;unicast;client_port=5000-5001', null],
    ['RTP/AVP;unicast,RTP/AVP/TCP;interleaved=8-9', [8, 9]]
  ]
  for (const [input, expected] of cases) tt.same(parseInterleaved(input), expected, input)
})

t.test('parseSessionHeader', async (tt) => {
  tt.same(parseSessionHeader('9A3F68D6;timeout=65'), { id: '9A3F68D6', timeout: 65 })
  tt.same(parseSessionHeader('9A3F68D6'), { id: '9A3F68D6' })
  tt.same(parseSessionHeader(' .AsT7ZWoHgc3jxOM '), { id: '.AsT7ZWoHgc3jxOM' })
  tt.same(parseSessionHeader('1234567890123456789'), { id: '1234567890123456789' }, 'DSS 64-bit decimal, no timeout')
  tt.same(parseSessionHeader('abc; Timeout = 30'), { id: 'abc', timeout: 30 })
  tt.same(parseSessionHeader('abc;timeout=soon'), { id: 'abc' })
  tt.same(parseSessionHeader('abc;foo=1;timeout=60'), { id: 'abc', timeout: 60 })
})

t.test('transports', async (t) => {
  t.same(chooseTransport('RTP/AVP/TCP;unicast;interleaved=4-5'), {
    lower: 'tcp',
    interleaved: [4, 5],
    raw: 'RTP/AVP/TCP;unicast;interleaved=4-5'
  })
  t.match(chooseTransport('RTP/AVP/TCP;unicast'), { lower: 'tcp' })
  t.match(chooseTransport('RTP/AVP;multicast, RTP/AVP;unicast;client_port=5000-5001'), {
    lower: 'udp',
    clientPort: [5000, 5001]
  })
  t.equal(chooseTransport('RTP/AVP;unicast'), undefined, 'UDP without client_port')
  t.equal(chooseTransport('RTP/AVP/TCP;unicast;mode=record'), undefined)
  t.equal(chooseTransport('RAW/RAW/UDP;unicast'), undefined)
  t.equal(formatTransport({ kind: 'tcp', rtpChannel: 0, rtcpChannel: 1 }, 0xab),
    'RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=000000AB;mode="PLAY"')
  t.equal(formatTransport({ kind: 'udp', host: '1.2.3.4', rtpPort: 5000, rtcpPort: 5001 }, 1, [6000, 6001]),
    'RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=00000001;mode="PLAY"')
})
