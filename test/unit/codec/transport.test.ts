import t from 'tap'
import { filterTcpTransports, parseInterleaved, parseSessionHeader } from '../../../src/tunnel/codec/transport.js'

t.test('filterTcpTransports', async (tt) => {
  const cases: Array<[string, string | null]> = [
    ['RTP/AVP;unicast;client_port=5000-5001', null],
    ['RTP/AVP/UDP;unicast;client_port=5000-5001', null],
    ['RTP/AVP;multicast', null],
    ['', null],
    ['RTP/AVP/TCP;unicast;interleaved=0-1', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
    ['RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
    ['RTP/AVP/TCP;unicast;interleaved=0-1, RTP/AVP;unicast;client_port=6970-6971', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
    ['RTP/AVP/TCP;unicast;destination=203.0.113.9;interleaved=2-3', 'RTP/AVP/TCP;unicast;interleaved=2-3'],
    ['RTP/AVP/TCP;unicast;Destination;interleaved=2-3', 'RTP/AVP/TCP;unicast;interleaved=2-3'],
    ['rtp/avp/tcp;unicast', 'rtp/avp/tcp;unicast'],
    ['RTP/AVPF/TCP;unicast;interleaved=0-1,RTP/SAVP/TCP;unicast;interleaved=2-3', 'RTP/AVPF/TCP;unicast;interleaved=0-1,RTP/SAVP/TCP;unicast;interleaved=2-3'],
    ['RTP/AVP/TCP;unicast;mode="PLAY";interleaved=0-1', 'RTP/AVP/TCP;unicast;mode="PLAY";interleaved=0-1'],
    ['RTP/AVP/TCP;unicast;destination="a,b";interleaved=0-1', 'RTP/AVP/TCP;unicast;interleaved=0-1'],
    // live555 reply style (from the captures): destination removed, source kept
    ['RTP/AVP/TCP;unicast;destination=127.0.0.1;source=127.0.0.1;interleaved=0-1', 'RTP/AVP/TCP;unicast;source=127.0.0.1;interleaved=0-1']
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
