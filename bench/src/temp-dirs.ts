/**
 * The bench's temporary directories (box configs, gc-hook reports, HAProxy's config): all under one
 * directory per bench process, removed when the process exits, so runs leave nothing in the temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let root: string | undefined

/** A fresh directory named after `prefix`, removed with the others at exit. */
export function benchTempDir (prefix: string): string {
  if (root === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tg-bench-'))
    root = dir
    process.once('exit', () => { rmSync(dir, { recursive: true, force: true }) })
  }
  return mkdtempSync(join(root, `${prefix}-`))
}
