/**
 * runGst's reading of a gst-launch run (test/helpers/peers.ts gstOutcome), on real output:
 * fakesink-50-stdout.txt is gst-launch -v … ! fakesink num-buffers=50 silent=false playing the
 * embedded origin's demo; stop-race-stderr.txt is what gst-launch printed when GStreamer's
 * stop-time race failed its PAUSE write (rtspt:// straight to the origin, no gateway, two CPU hogs).
 * Only that exact ending after every buffer counts as played; anything else stays a failure.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { gstOutcome, type PeerResult } from '../../helpers/peers.js'

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/gst/${name}`, import.meta.url), 'utf8')
const stdout = fixture('fakesink-50-stdout.txt')
const race = fixture('stop-race-stderr.txt')
const run = (o: Partial<PeerResult>): PeerResult =>
  ({ code: 0, signal: null, stdout, stderr: '', timedOut: false, ms: 2500, ...o })

t.test('a clean run: every buffer counted, played, no race', async t => {
  const g = gstOutcome(run({}), 50)
  t.same([g.buffers, g.played, g.stopRace], [50, true, false])
})

t.test('the stop-time race after every buffer: played', async t => {
  const g = gstOutcome(run({ code: 1, stderr: race }), 50)
  t.same([g.buffers, g.played, g.stopRace], [50, true, true])
})

t.test('anything else is a failure', async t => {
  const cut = stdout.split('\n').filter((l, i, all) =>
    !(l.includes('last-message = chain') &&
      i === all.findLastIndex(x => x.includes('last-message = chain')))).join('\n')
  t.same([gstOutcome(run({ code: 1, stderr: race, stdout: cut }), 50).played,
    gstOutcome(run({ code: 1, stderr: race, stdout: cut }), 50).buffers],
  [false, 49], 'the same errors one buffer short')
  const other = race +
    'ERROR: from element /GstPipeline:pipeline0/GstRTSPSrc:rtspsrc0: Unauthorized\nAdditional debug info:\n' +
    '../gst/rtsp/gstrtspsrc.c(6821): gst_rtspsrc_send (): /GstPipeline:pipeline0/GstRTSPSrc:rtspsrc0:\n' +
    'Unauthorized (401)\n'
  t.equal(gstOutcome(run({ code: 1, stderr: other }), 50).played, false, 'another ERROR beside the race')
  const receive = race.replace(/Could not send message\. \(Received end-of-file\)/,
    'Could not receive message. (Timeout while waiting for server response)')
  t.equal(gstOutcome(run({ code: 1, stderr: receive }), 50).played, false, 'a different failure in the same functions')
  t.equal(gstOutcome(run({ code: 1, stderr: '' }), 50).played, false, 'exit 1 with no error printed')
  t.equal(gstOutcome(run({
    code: 1,
    stderr: 'WARNING: from element /GstPipeline:pipeline0/GstRTSPSrc:rtspsrc0: Could not read from resource.\n' + race
  }), 50).played, false, 'something else on stderr before the race')
  t.equal(gstOutcome(run({ code: 1, stderr: race, timedOut: true }), 50).played, false, 'timed out')
  t.equal(gstOutcome(run({ code: 2, stderr: race }), 50).played, false, 'another exit code')
})
