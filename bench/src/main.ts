/**
 * Entry of the bench package: `node bench/dist/main.js [...]` (`npm run bench`, and `tunnelgate bench`
 * in a checkout, run this). See docs/benchmarks.md.
 */
import { benchProcess } from './cli.js'

await benchProcess(process.argv.slice(2))
