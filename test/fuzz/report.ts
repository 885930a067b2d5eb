/** The text summary of one campaign: rates, what was sent and answered, resources, findings and how to replay them. */
import type { CampaignResult } from './campaign.js'
import { describe } from './resources.js'

export function report (r: CampaignResult): string {
  const top = (m: Map<string, number>, n: number): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
  const lines = [
    `layout ${r.layout}: seed ${r.seed}, ${r.seconds.toFixed(0)} s of traffic, ${r.stats.cases} cases (${
      r.casesPerSecond.toFixed(0)}/s), ${r.stats.conns} connections (${r.connsPerSecond.toFixed(0)}/s), ${
      r.restarts} restart(s)`,
    `  cases by kind: ${top(r.stats.kinds, 10)}`,
    `  first answers: ${top(r.stats.answers, 8)}`,
    `  baseline: ${describe(r.baseline)}`,
    `  settled:  ${
      r.settled === null ? 'not checked (the gateway was restarted after a failure)' : describe(r.settled)}`
  ]
  if (r.findings.length === 0) lines.push('  oracles: all held')
  for (const f of r.findings) {
    lines.push(
      `  FAILED ${f.oracle}: ${f.signature} (first after ${(f.afterMs / 1000).toFixed(1)} s, seen ${f.occurrences}x)`
    )
    lines.push(`    ${f.known ? 'known, fixture' : 'fixture'}: ${f.fixture ?? '-'}   replay: ${f.replay ?? '-'}`)
    lines.push(`    ${f.message.split('\n').slice(0, 6).join('\n    ')}`)
  }
  return lines.join('\n')
}
