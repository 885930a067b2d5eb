/** Hand-made bench results for the bench's own tests (test data, not figures). */
import type { StepResult } from '../../bench/src/window.js'

/** One load window of `tunnels` at 2 Mbit/s each, every packet on time; `o` overrides. */
export function benchStep (tunnels: number, o: Partial<StepResult> = {}): StepResult {
  const mbps = tunnels * 2
  return {
    tunnels,
    kbps: 2000,
    seconds: 2,
    offeredMbps: mbps,
    deliveredMbps: mbps,
    packets: 1000,
    lost: 0,
    late: 0,
    errors: 0,
    held: true,
    cpuBox: 0,
    cpuProcs: [],
    cpuPerGbit: null,
    cpuSource: 0,
    cpuClient: 0,
    cpuMachine: 0,
    cpuSteal: 0,
    cores: 2,
    gc: null,
    disturbed: false,
    boxRssMB: 100,
    delayMs: { n: 10, p50: 1, p99: 2, p999: 3 },
    ...o
  }
}
