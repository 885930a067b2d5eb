/**
 * How the bench reaches the gateway under test: the `tunnelgate` bin of the tunnelgate package
 * (its package.json "bin", found through the package's "exports"), started as a child process.
 * The bench never loads the gateway's own modules by path.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)

/** The path of the `tunnelgate` bin; throws when the gateway is not built (no dist/). */
export function tunnelgateBin (): string {
  const pkgFile = require.resolve('tunnelgate/package.json')
  try {
    require.resolve('tunnelgate')
  } catch {
    throw new Error('tunnelgate is not built (dist/ is missing): run `npm run build` first')
  }
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { bin: { tunnelgate: string } }
  return join(dirname(pkgFile), pkg.bin.tunnelgate)
}
