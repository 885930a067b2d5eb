/**
 * Reply ordering (src/session/reply-order.ts): replies leave in request order whoever makes them,
 * backend replies find their slot by CSeq, a silent backend's slot is answered at its deadline,
 * a withdrawn slot holds nothing up, and after fatal input the replies before it flush before
 * the close (or the flush deadline closes). The timers are driven by hand.
 */
import t from 'tap'
import { FLUSH_DEADLINE_MS, ReplyOrder } from '../../../src/session/reply-order.js'
import type { SessionTimers, TimerHandle } from '../../../src/session/timers.js'
import { makeResponse, serializeMessage } from '../../../src/tunnel/codec/rtsp-message.js'

/** Timers fired by hand: `fire(where)` runs every armed timer of that entry point. */
function manualTimers (): SessionTimers & {
  armed: Array<{ where: string, ms: number, fn: () => void }>,
  fire: (where: string) => void
} {
  const armed: Array<{ where: string, ms: number, fn: () => void, handle: TimerHandle }> = []
  return {
    armed,
    set (where, ms, fn) {
      const handle = setTimeout(() => {}, 0)
      clearTimeout(handle)
      armed.push({ where, ms, fn, handle })
      return handle
    },
    clear (h) { const i = armed.findIndex(a => a.handle === h); if (i !== -1) armed.splice(i, 1) },
    fire (where) { for (const a of armed.filter(x => x.where === where)) { armed.splice(armed.indexOf(a), 1); a.fn() } }
  }
}

function order (): {
  o: ReplyOrder,
  sent: string[],
  answered: number[],
  closed: string[],
  paused: number,
  timers: ReturnType<typeof manualTimers>
} {
  const timers = manualTimers()
  const r = {
    sent: [] as string[],
    answered: [] as number[],
    closed: [] as string[],
    paused: 0,
    timers,
    o: null as unknown as ReplyOrder
  }
  r.o = new ReplyOrder({
    write: buf => { r.sent.push(/CSeq: (\S+)/.exec(buf.toString())?.[1] ?? '?') },
    answered: status => { r.answered.push(status) },
    close: (reason, outcome) => { r.closed.push(`${reason}/${outcome}`) },
    pauseInput: () => { r.paused++ }
  }, timers)
  return r
}
const backendReply = (cseq: string): Buffer => serializeMessage(makeResponse(200, cseq))

t.test('replies leave in request order, matched by CSeq', async t => {
  const r = order()
  const a = r.o.open('1', 'DESCRIBE')
  r.o.open('2', 'SETUP')
  const c = r.o.open('3', 'OPTIONS')
  r.o.fill(r.o.match('2')!, backendReply('2'))
  t.same(r.sent, [], 'the second waits for the first')
  r.o.fill(c, makeResponse(404, '3'))
  t.same(r.answered, [404], 'a gateway answer is counted')
  t.equal(r.o.match('3'), undefined, 'a filled slot is matched no more')
  r.o.fill(a, backendReply('1'))
  t.same(r.sent, ['1', '2', '3'], 'all three, in order')
  t.equal(r.o.waiting, 0)
  t.same(r.answered, [404], 'backend replies are not gateway answers')
})

t.test('two requests with one CSeq: the oldest waiting slot takes the reply', async t => {
  const r = order()
  r.o.open('5', 'OPTIONS')
  r.o.open('5', 'OPTIONS')
  r.o.fill(r.o.match('5')!, backendReply('5'))
  t.same(r.sent, ['5'])
  t.equal(r.o.waiting, 1)
  t.ok(r.o.match('5'), 'the second is still waiting')
})

t.test('a silent backend: the slot is answered at its deadline, unless its reply came', async t => {
  const r = order()
  const a = r.o.open('1', 'DESCRIBE')
  const b = r.o.open('2', 'PLAY')
  r.o.expect(a, 'session-reply-timer', 3000, () => r.o.fill(a, makeResponse(504, '1')))
  r.o.expect(b, 'session-reply-timer', 3000, () => r.o.fill(b, makeResponse(504, '2')))
  t.same(r.timers.armed.map(x => x.ms), [3000, 3000])
  r.o.fill(b, backendReply('2'))
  t.equal(r.timers.armed.length, 1, 'a filled slot\'s timer is cleared')
  r.timers.fire('session-reply-timer')
  t.same(r.sent, ['1', '2'])
  t.same(r.answered, [504])
})

t.test('a withdrawn slot (the live fan-out took the request) holds nothing up', async t => {
  const r = order()
  const a = r.o.open('1', 'OPTIONS')
  r.o.open('2', 'DESCRIBE')
  r.o.withdrawLast()
  r.o.fill(a, backendReply('1'))
  t.same(r.sent, ['1'])
  t.equal(r.o.waiting, 0)
})

t.test('an answer with no slot of its own (undecodable input) is sent behind the others', async t => {
  const r = order()
  const a = r.o.open('1', 'DESCRIBE')
  r.o.reply(makeResponse(400, '2'))
  t.same(r.sent, [])
  r.o.fill(a, backendReply('1'))
  t.same(r.sent, ['1', '2'])
  t.same(r.answered, [400])
})

t.test('answerAll answers every waiting slot, each once, in order', async t => {
  const r = order()
  r.o.open('1', 'A')
  r.o.open('2', 'B')
  r.o.fill(r.o.open('3', 'C'), backendReply('3'))
  r.o.open('4', 'D')
  r.o.answerAll(cseq => makeResponse(503, cseq, [['Retry-After', '5']]))
  t.same(r.sent, ['1', '2', '3', '4'])
  t.same(r.answered, [503, 503, 503])
})

t.test('fatal input: pause, flush what came before, then close', async t => {
  const r = order()
  const a = r.o.open('1', 'DESCRIBE')
  r.o.reply(makeResponse(400, '2'))
  r.o.closeAfterFlush('client-protocol-error', 'client_error', 10_000)
  t.ok(r.o.flushing)
  t.equal(r.paused, 1, 'input paused')
  t.same(r.timers.armed.map(x => [x.where, x.ms]), [['session-flush-timer', FLUSH_DEADLINE_MS]])
  r.o.closeAfterFlush('again', 'x', 10_000)
  t.equal(r.paused, 1, 'once')
  t.same(r.closed, [])
  r.o.fill(a, backendReply('1'))
  t.same(r.sent, ['1', '2'])
  t.same(r.closed, ['client-protocol-error/client_error'], 'closed once flushed')
})

t.test('fatal input: the flush deadline closes (at most the reply timeout); nothing waiting closes at ' +
  'once', async t => {
  const r = order()
  r.o.open('1', 'DESCRIBE')
  r.o.closeAfterFlush('client-protocol-error', 'client_error', 500)
  t.same(r.timers.armed.map(x => x.ms), [500])
  r.timers.fire('session-flush-timer')
  t.same(r.closed, ['client-protocol-error/client_error'])
  const q = order()
  q.o.closeAfterFlush('client-protocol-error', 'client_error', 500)
  t.same(q.closed, ['client-protocol-error/client_error'])
  t.equal(q.paused, 0)
})

t.test('clear: every timer cleared, nothing more sent', async t => {
  const r = order()
  const a = r.o.open('1', 'DESCRIBE')
  r.o.expect(a, 'session-reply-timer', 3000, () => t.fail('no answer after clear'))
  r.o.open('2', 'PLAY')
  r.o.closeAfterFlush('x', 'y', 1000)
  r.o.clear()
  t.same(r.timers.armed, [])
  t.equal(r.o.waiting, 0)
})
