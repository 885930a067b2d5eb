/**
 * The benchmark from source (`npx tsx test/bench/run.ts`), report into docs/ by default. Pass --quick
 * for a short run, --out DIR to write elsewhere. `npm run bench` runs the same compiled (bench/dist).
 */
import { fileURLToPath } from 'node:url'
import { benchProcess } from '../../bench/src/cli.js'

await benchProcess(process.argv.slice(2), fileURLToPath(new URL('../../docs', import.meta.url)))
