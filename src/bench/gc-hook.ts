/**
 * Preloaded (`node --expose-gc --import …/gc-hook.js`) into the bench's Node middle boxes —
 * tunnelgate (portal and, through fork()'s inherited execArgv, its relay workers) and the raw TCP
 * relay — so the scale phase can read their memory after a full garbage collection instead of
 * whenever V8 last collected: on SIGUSR2 the process runs gc() twice and writes its
 * process.memoryUsage() as JSON to `$TUNNELGATE_BENCH_GC_DIR/gc-<pid>.json` (rss, heapTotal,
 * heapUsed, external, arrayBuffers, and `seq`: how many times it has done so).
 *
 * Bench only: the gateway itself has no GC hook (an admin route that forces a full GC would be a
 * denial-of-service lever), and a process without this preload ignores nothing — it is simply
 * not asked. Without --expose-gc the figures are written without a collection (`gc: false`).
 */
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.TUNNELGATE_BENCH_GC_DIR
if (dir !== undefined && dir !== '') {
  let seq = 0
  const gc = (globalThis as { gc?: () => void }).gc
  const report = (): void => {
    const file = join(dir, `gc-${process.pid}.json`)
    try {
      writeFileSync(file + '.tmp', JSON.stringify({ seq, gc: gc !== undefined, ...process.memoryUsage() }))
      renameSync(file + '.tmp', file)
    } catch { /* the bench reads what it can (procstat.ts memorySnapshot) */ }
  }
  process.on('SIGUSR2', () => {
    if (gc !== undefined) { gc(); gc() }
    seq++
    report()
  })
  // seq 0: announces that this process has the handler (SIGUSR2 would kill one without it).
  report()
}
