/**
 * The one Transport codec (src/tunnel/codec/transport.ts) as the session, the live fan-out and the
 * origin use it: one parse (quotes respected), the session's TCP filter and interleaved channels,
 * the origin's choice, and the replies formatted from it read back the same.
 */
import t from 'tap'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {
  chooseTransport, filterTcpTransports, formatInterleavedTransport, formatTransport, parseInterleaved, parseTransport,
  type TransportSpec
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
