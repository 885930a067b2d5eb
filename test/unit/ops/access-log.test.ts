/** The access log (src/ops/access-log.ts) to a file: one JSON line per record, rotation by size, keep N. */
import t from 'tap'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AccessLog } from '../../../src/ops/access-log.js'
import type { AccessRecord } from '../../../src/route/relay-view.js'

const quiet = { info () {}, error () {} } as never
const record = (i: number): AccessRecord =>
  ({
    id: `l-${i}`,
    transport: 'http-tunnel',
    client: '127.0.0.1',
    userAgent: 'ua',
    path: '/demo',
    backend: 'origin',
    relay: 'local',
    start: new Date(0).toISOString(),
    durationMs: i,
    bytesToClient: 10,
    bytesFromClient: 5,
    rtpPacketsToClient: 1,
    rtpPacketsFromClient: 0,
    reason: 'client-closed',
    outcome: 'ok',
    user: '-'
  })

t.test('lines, rotation and the number of files kept', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-access-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'access.log')
  const log = new AccessLog({ enabled: true, file, maxBytes: 1024, keep: 2 }, quiet)
  for (let i = 0; i < 40; i++) { log.write(record(i)); await log.flush() }
  await log.close()
  const files = readdirSync(dir).sort()
  t.same(files, ['access.log', 'access.log.1', 'access.log.2'], 'rotated, two kept')
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8')
    t.ok(Buffer.byteLength(text) <= 1024, `${f} within maxBytes`)
    for (const line of text.trim().split('\n')) t.match(JSON.parse(line), { id: /^l-\d+$/, outcome: 'ok' })
  }
  const last = readFileSync(file, 'utf8').trim().split('\n').pop()!
  t.equal(JSON.parse(last).id, 'l-39', 'the newest record in the current file')
  log.write(record(99))
  t.equal(readFileSync(file, 'utf8').includes('l-99'), false, 'nothing written after close')
})

t.test('disabled: nothing written', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-access-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = new AccessLog({ enabled: false, file: join(dir, 'a.log'), maxBytes: 1024, keep: 1 }, quiet)
  log.write(record(1))
  await log.close()
  t.same(readdirSync(dir), [])
})
