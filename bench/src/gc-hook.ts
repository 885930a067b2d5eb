/**
 * Preloaded (`node --expose-gc --import …/gc-hook.js`) into the bench's Node middle boxes —
 * tunnelgate (portal and, through fork()'s inherited execArgv, its relay workers) and the raw TCP
 * relay — so the scale phase can read their memory after a full garbage collection instead of
 * whenever V8 last collected: on SIGUSR2 the process runs gc() twice and writes its
 * process.memoryUsage() as JSON to `$TUNNELGATE_BENCH_GC_DIR/gc-<pid>.json` (rss, heapTotal,
 * heapUsed, external, arrayBuffers, and `seq`: how many times it has done so).
 *
 * On SIGURG it writes, without collecting, its GC pauses so far to `gcstats-<pid>.json` (count,
 * total ms, the recent pauses ≥ 1 ms with their end time): the bench reads them around each
 * measurement window (procstat.ts gcStats) to see whether a collector pause explains a stall.
 *
 * Bench only: the gateway itself has no GC hook (an admin route that forces a full GC would be a
 * denial-of-service lever), and a process without this preload ignores nothing — it is simply
 * not asked. Without --expose-gc the figures are written without a collection (`gc: false`).
 */
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance, PerformanceObserver } from 'node:perf_hooks'

/** Write `data` as JSON to `file` atomically (the bench may read it at any moment). */
function writeJson (file: string, data: unknown): void {
  try {
    writeFileSync(file + '.tmp', JSON.stringify(data))
    renameSync(file + '.tmp', file)
  } catch { /* the bench reads what it can (procstat.ts) */ }
}

const dir = process.env.TUNNELGATE_BENCH_GC_DIR
if (dir !== undefined && dir !== '') {
  let seq = 0
  const gc = (globalThis as { gc?: () => void }).gc
  const report = (): void => {
    writeJson(join(dir, `gc-${process.pid}.json`), { seq, gc: gc !== undefined, ...process.memoryUsage() })
  }
  // GC pauses, for the bench to tell a collector pause from anything else in a window: every
  // collection counted and timed, the last 512 pauses of 1 ms or more with their end time (epoch
  // ms). Written on SIGURG (whose default action is to ignore it: harmless to a process without
  // this hook), without collecting anything.
  let statsSeq = 0
  let gcCount = 0
  let gcTotalMs = 0
  const pauses: Array<[number, number]> = []
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) {
      gcCount++
      gcTotalMs += e.duration
      if (e.duration >= 1) {
        pauses.push([performance.timeOrigin + e.startTime + e.duration, e.duration])
        if (pauses.length > 512) pauses.shift()
      }
    }
  }).observe({ entryTypes: ['gc'] })
  process.on('SIGURG', () => {
    statsSeq++
    writeJson(join(dir, `gcstats-${process.pid}.json`), { seq: statsSeq, count: gcCount, totalMs: gcTotalMs, pauses })
  })
  process.on('SIGUSR2', () => {
    if (gc !== undefined) { gc(); gc() }
    seq++
    report()
  })
  // seq 0: announces that this process has the handler (SIGUSR2 would kill one without it).
  report()
}
