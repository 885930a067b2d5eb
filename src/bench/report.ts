/**
 * docs/benchmarks.md and docs/benchmarks.svg from one run's results (run.ts). Every figure in
 * them comes from the results object; nothing is typed in by hand.
 */
import type { BenchResults, ScenarioResult, StepResult } from './run.js'
import type { LiveResult, LiveSide, LiveStep } from './live.js'

const COLORS: Record<string, string> = { a: '#d62728', b1: '#ff7f0e', b2: '#9467bd', c: '#2ca02c', d: '#1f77b4', e: '#7f7f7f' }

const f = (v: number | null | undefined, d = 2): string => v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d)
/** Signed difference: "+1.20", "−0.40". */
const sg = (v: number | null | undefined, d = 2): string => v === null || v === undefined || !Number.isFinite(v) ? '–' : (v < 0 ? '−' : '+') + Math.abs(v).toFixed(d)

function byId (r: BenchResults, id: string): ScenarioResult | undefined { return r.scenarios.find(s => s.id === id && s.error === undefined) ?? r.scenarios.find(s => s.id === id) }

function delayAt (s: ScenarioResult | undefined, fraction: number): (StepResult & { fraction: number }) | undefined {
  return s?.delay.find(d => d.fraction === fraction)
}

export interface Verdict { target: string, measured: string, met: boolean | null }

export function verdicts (r: BenchResults): Verdict[] {
  const a = byId(r, 'a')
  const b1 = byId(r, 'b1')
  const b2 = byId(r, 'b2')
  const c = byId(r, 'c')
  const d = byId(r, 'd')
  const out: Verdict[] = []
  // 1. CPU per Gbit against HAProxy at the same loads (the delay phase runs every box at the same N).
  const pairs = (a?.delay ?? []).map(x => ({ f: x.fraction, a: x.cpuPerGbit, d: delayAt(d, x.fraction)?.cpuPerGbit ?? null })).filter(p => p.a !== null && p.d !== null && p.d > 0)
  if (pairs.length > 0) {
    const top = pairs[pairs.length - 1]!
    out.push({ target: 'CPU per delivered Gbit: tunnelgate (a) ≤ 2.0 × HAProxy (d)', measured: pairs.map(p => `${f(p.a! / p.d!)}× at ${Math.round(p.f * 100)} %`).join(', ') + ` (verdict at ${Math.round(top.f * 100)} %)`, met: top.a! / top.d! <= 2.0 })
  } else out.push({ target: 'CPU per delivered Gbit: tunnelgate (a) ≤ 2.0 × HAProxy (d)', measured: 'not measured', met: null })
  // 2. Setup latency added over direct.
  if (a?.setup !== undefined && c?.setup !== undefined) {
    const p50 = a.setup.sequential.p50 - c.setup.sequential.p50
    const p99 = a.setup.sequential.p99 - c.setup.sequential.p99
    const pp50 = a.setup.parallel.p50 - c.setup.parallel.p50
    const pp99 = a.setup.parallel.p99 - c.setup.parallel.p99
    out.push({ target: 'Added setup latency over direct: p50 ≤ 2 ms, p99 ≤ 10 ms', measured: `sequential ${sg(p50)} / ${sg(p99)} ms; ${a.setup.parallel.n} simultaneous ${sg(pp50)} / ${sg(pp99)} ms (verdict on both)`, met: p50 <= 2 && p99 <= 10 && pp50 <= 2 && pp99 <= 10 })
  } else out.push({ target: 'Added setup latency over direct: p50 ≤ 2 ms, p99 ≤ 10 ms', measured: 'not measured', met: null })
  // 3. Added per-packet delay at 50 %.
  const a50 = delayAt(a, 0.5)
  const c50 = delayAt(c, 0.5)
  if (a50 !== undefined && c50 !== undefined && a50.delayMs.n > 0 && c50.delayMs.n > 0) {
    const add = a50.delayMs.p99 - c50.delayMs.p99
    const clean = a50.late === 0 && c50.late === 0 && a50.lost === 0 && c50.lost === 0
    out.push({ target: 'Added per-packet delay at 50 % of held load: p99 ≤ 1 ms', measured: `${sg(add, 3)} ms (a p99 ${f(a50.delayMs.p99, 3)} ms, direct ${f(c50.delayMs.p99, 3)} ms, ${a50.tunnels} tunnels)${clean ? '' : '; inconclusive: late or lost packets in one of the two windows'}`, met: clean ? add <= 1 : null })
  } else out.push({ target: 'Added per-packet delay at 50 % of held load: p99 ≤ 1 ms', measured: 'not measured', met: null })
  // 4. Memory and 10,000 paused tunnels.
  if (a?.scale !== undefined) {
    const kib = a.scale.bytesPerTunnel === null ? null : a.scale.bytesPerTunnel / 1024
    const held = a.scale.opened >= 10000 && a.scale.keepaliveAnswered >= 10000
    out.push({ target: 'Memory ≤ 32 KiB per paused tunnel; 10,000 paused tunnels held', measured: `${f(kib, 1)} KiB per tunnel; ${a.scale.opened} of ${a.scale.requested} held, ${a.scale.keepaliveAnswered} keepalives answered`, met: a.scale.requested < 10000 ? null : (kib !== null && kib <= 32 && held) })
  } else out.push({ target: 'Memory ≤ 32 KiB per paused tunnel; 10,000 paused tunnels held', measured: 'not measured', met: null })
  // 5. Workers scale.
  if (b1 !== undefined && b2 !== undefined && b1.heldMbps > 0) {
    const ratio = b2.heldMbps / b1.heldMbps
    out.push({ target: 'Throughput scales with relay workers: 2 workers ≥ 1.7 × 1 worker', measured: `${f(ratio)}× (${f(b2.heldMbps, 0)} vs ${f(b1.heldMbps, 0)} Mbit/s held)`, met: ratio >= 1.7 })
  } else out.push({ target: 'Throughput scales with relay workers: 2 workers ≥ 1.7 × 1 worker', measured: b1 === undefined || b2 === undefined ? 'not measured' : `no ratio: 1 worker held ${b1.heldMbps.toFixed(0)} Mbit/s, 2 workers ${b2.heldMbps.toFixed(0)} Mbit/s`, met: null })
  return out
}

function stepRows (steps: StepResult[], direct: ScenarioResult | undefined, byFraction = false): string[] {
  const rows = [
    `| ${byFraction ? 'load | ' : ''}tunnels × kbit/s | offered Mbit/s | delivered Mbit/s | lost | late | box CPU-s | box CPU-s/Gbit | source CPU-s | client CPU-s | delay p50 / p99 / p99.9 ms | added p99 over direct ms | box RSS MB |`,
    `|${byFraction ? '---|' : ''}---|---|---|---|---|---|---|---|---|---|---|---|`
  ]
  for (const s of steps) {
    const fr = (s as StepResult & { fraction?: number }).fraction
    const dir = direct === undefined ? undefined : (fr !== undefined ? delayAt(direct, fr) : direct.sweep.find(x => x.tunnels === s.tunnels))
    const added = dir !== undefined && dir.delayMs.n > 0 && s.delayMs.n > 0 ? s.delayMs.p99 - dir.delayMs.p99 : null
    rows.push(`| ${byFraction ? `${Math.round((fr ?? 0) * 100)} % | ` : ''}${s.tunnels} × ${s.kbps} | ${f(s.offeredMbps, 0)} | ${f(s.deliveredMbps, 0)} | ${s.lost} | ${s.late} | ${f(s.cpuBox)} | ${f(s.cpuPerGbit, 3)} | ${f(s.cpuSource)} | ${f(s.cpuClient)} | ${f(s.delayMs.p50, 3)} / ${f(s.delayMs.p99, 3)} / ${f(s.delayMs.p999, 3)} | ${added === null ? '–' : sg(added, 3)} | ${f(s.boxRssMB, 0)} |`)
  }
  return rows
}

/** Which run each section's figures come from (sections can come from different runs: run.ts mergeResults). */
function provenance (r: BenchResults): string[] {
  const boxes = r.scenarios.length > 0 || r.micro.length > 0
  const L = ['', '| section | from the run of | profile | run took |', '|---|---|---|---|']
  if (boxes) L.push(`| micro-benchmarks, scenarios ${r.scenarios.map(s => s.id).join(', ')} and the targets | ${r.date} | ${r.profile} | ${f(r.durationSeconds / 60, 1)} min |`)
  else L.push('| micro-benchmarks, scenarios a–e and the targets | not measured yet | – | – |')
  if (r.live !== undefined) L.push(`| live (viewers per core on one live stream) | ${r.live.date} | ${r.live.profile} | ${f(r.live.durationSeconds / 60, 1)} min |`)
  else L.push('| live (viewers per core on one live stream) | not measured yet | – | – |')
  return L
}

export function renderMarkdown (r: BenchResults): string {
  const m = r.machine
  const o = r.options
  const c = byId(r, 'c')
  const L: string[] = []
  L.push('# Benchmarks', '')
  L.push(`> Generated by \`tunnelgate bench\` (profile **${r.profile}**) on ${r.date}; the run took ${f(r.durationSeconds / 60, 1)} min.`)
  L.push('> Do not edit by hand: `npm run bench` (or `tunnelgate bench`) rewrites this file, `benchmarks.json` (raw results) and `benchmarks.svg`; `tunnelgate bench --scenarios live --out docs` re-measures only the live section and merges it in.')
  if (r.profile !== 'full') L.push(`> **This is a ${r.profile} run**: fewer tunnels and shorter windows than the full bench; its figures are indicative only.`)
  L.push(...provenance(r))
  L.push('', '## Machine', '', '| | |', '|---|---|')
  L.push(`| CPUs (nproc) | ${m.nproc} × ${m.cpu} |`, `| kernel | Linux ${m.kernel} |`, `| Node.js | ${m.node} |`, `| HAProxy | ${m.haproxy ?? 'not installed'} |`, `| ffmpeg | ${m.ffmpeg ?? '–'} |`, `| GStreamer | ${m.gstreamer ?? '–'} |`, `| load average at start | ${m.loadavg} |`)
  L.push('', 'Everything runs on this one machine: the load generator (one Node process), the bench source (one Node process) and the middle box under test share its cores, so absolute figures depend on the machine and on whatever else runs; compare scenarios by the ratios below, all taken in this one run.')
  L.push('', '## Targets (issue #6), from this run', '', '| target | measured | met? |', '|---|---|---|')
  for (const v of verdicts(r)) L.push(`| ${v.target} | ${v.measured} | ${v.met === null ? 'not decided by this run' : v.met ? '**met**' : '**not met**'} |`)
  const aHeld = byId(r, 'a')?.heldTunnels ?? 0
  L.push('', '## Summary', '', `Reference load for the delay phase: ${r.referenceTunnels} tunnels × ${o.kbps} kbit/s (${aHeld > 0 ? 'the highest load tunnelgate all-in-one held in its sweep' : 'tunnelgate all-in-one held no sweep step without a late packet, so the first step is used'}); every scenario is measured at the same fractions of it.`, '')
  L.push('| scenario | held load (tunnels / Mbit/s) | CPU-s per Gbit at ' + o.delayFractions.map(x => `${Math.round(x * 100)} %`).join(' / ') + ' | setup p50 / p99 ms (sequential) | added over direct | delay p99 at 50 % ms | added over direct | paused tunnels held | KiB per tunnel |')
  L.push('|---|---|---|---|---|---|---|---|---|')
  for (const s of r.scenarios) {
    const cpu = o.delayFractions.map(x => f(delayAt(s, x)?.cpuPerGbit, 3)).join(' / ')
    const su = s.setup?.sequential
    const addSetup = su !== undefined && c?.setup !== undefined ? `${sg(su.p50 - c.setup.sequential.p50)} / ${sg(su.p99 - c.setup.sequential.p99)}` : '–'
    const d50 = delayAt(s, 0.5)
    const c50 = delayAt(c, 0.5)
    const addDelay = d50 !== undefined && c50 !== undefined && d50.delayMs.n > 0 && c50.delayMs.n > 0 ? sg(d50.delayMs.p99 - c50.delayMs.p99, 3) : '–'
    L.push(`| ${s.id}: ${s.name}${s.error !== undefined ? ` (failed: ${s.error})` : ''} | ${s.heldTunnels} / ${f(s.heldMbps, 0)} | ${s.id === 'c' ? 'no middle box' : cpu} | ${f(su?.p50)} / ${f(su?.p99)} | ${s.id === 'c' ? 'baseline' : addSetup} | ${f(d50?.delayMs.p99, 3)} | ${s.id === 'c' ? 'baseline' : addDelay} | ${s.scale === undefined ? '–' : `${s.scale.opened} / ${s.scale.requested}`} | ${s.id === 'c' ? '–' : f(s.scale?.bytesPerTunnel === null || s.scale === undefined ? null : s.scale.bytesPerTunnel / 1024, 1)} |`)
  }
  L.push('', '![CPU per delivered Gbit and added p99 delay against load](benchmarks.svg)', '')
  for (const s of r.scenarios) {
    L.push(`## ${s.id}: ${s.name}`, '')
    if (s.error !== undefined) L.push(`**Failed:** ${s.error}`, '')
    if (s.scale !== undefined) L.push(`Scale: ${s.scale.opened} of ${s.scale.requested} paused tunnels opened in ${f(s.scale.openSeconds, 1)} s, ${s.scale.keepaliveAnswered} keepalives answered; middle-box RSS ${f(s.scale.rssBeforeMB, 0)} → ${f(s.scale.rssAfterMB, 0)} MB = ${s.id === 'c' ? '– (no middle box)' : `${f(s.scale.bytesPerTunnel === null ? null : s.scale.bytesPerTunnel / 1024, 1)} KiB per tunnel`}.`, '')
    if (s.setup !== undefined) {
      L.push('Setup (GET written → first RTP byte):', '', '| | n | failed | p50 ms | p99 ms | max ms |', '|---|---|---|---|---|---|')
      L.push(`| sequential | ${s.setup.sequential.n} | ${s.setup.sequential.failed} | ${f(s.setup.sequential.p50)} | ${f(s.setup.sequential.p99)} | ${f(s.setup.sequential.max)} |`)
      L.push(`| simultaneous | ${s.setup.parallel.n} | ${s.setup.parallel.failed} | ${f(s.setup.parallel.p50)} | ${f(s.setup.parallel.p99)} | ${f(s.setup.parallel.max)} |`, '')
    }
    if (s.sweep.length > 0) L.push('Throughput sweep (stops at the first step with a lost or late packet, a failed tunnel, or < 97 % delivered, measured twice):', '', ...stepRows(s.sweep, s.id === 'c' ? undefined : c), '')
    if (s.delay.length > 0) L.push(`One-way delay at fractions of the reference load (${r.referenceTunnels} tunnels):`, '', ...stepRows(s.delay, s.id === 'c' ? undefined : c, true), '')
  }
  if (r.live !== undefined) L.push(...renderLive(r.live))
  L.push('## Micro-benchmarks of the hot path', '', 'Each subject is timed against a baseline in the same process, interleaved (median of 3 rounds).', '')
  L.push('| subject | ns per op | baseline | baseline ns | ratio |', '|---|---|---|---|---|')
  for (const x of r.micro) L.push(`| ${x.name} | ${f(x.nsPerOp, 0)} per ${x.unit} | ${x.baseline} | ${f(x.baselineNsPerOp, 0)} | ${f(x.ratio)} × |`)
  L.push('', '## Method', '')
  L.push(`- **Source**: \`src/bench/source.ts\`, one Node process for the whole run. It serves \`rtsp://…/b/<kbit/s>\` with synthetic RTP (1400-byte packets, ${o.tickMs} ms pacing tick: a session's due packets leave in one write), over plain RTSP/TCP (tunnelgate's relays) and over the QuickTime tunnel, which it terminates itself (direct, HAProxy, raw relay). Above 1 MiB unsent on a socket it drops due packets (live semantics), which the receiver counts as lost.`)
  L.push('- **Stamp**: each RTP packet carries a header extension (profile 0x544E) with the sender\'s `process.hrtime.bigint()` at write time; CLOCK_MONOTONIC is shared by all processes, so the load generator reads one-way delay directly. The embedded origin writes the same extension with `stampPayloads` (docs/origin.md).')
  L.push(`- **Load generator**: \`src/bench/load.ts\`, one process: GET + POST, DESCRIBE / SETUP / PLAY base64 on the POST, interleaved RTP read in place; sequence gaps = lost, delay > ${o.lateMs} ms = late. Keepalive is GET_PARAMETER.`)
  L.push('- **CPU** of a middle box: utime + stime from `/proc/<pid>/stat` of its processes only (portal and workers for b1/b2) over the measurement window, divided by the Gbit delivered to the clients (RTP frames incl. the 4-byte `$` header). Source and client CPU are reported beside it.')
  L.push(`- **Windows**: sweep steps of ${o.steps.join(', ')} tunnels × ${o.kbps} kbit/s, ${o.warmSeconds} s warm-up, ${o.stepSeconds} s measured (a step that fails is measured once more before the sweep stops); delay phase ${o.delaySeconds} s per fraction; ${o.setupSequential} sequential and ${o.setupParallel} simultaneous setups; ${o.scaleTunnels} paused tunnels (DESCRIBE, SETUP, PLAY, PAUSE, then the POST is closed as QuickTime does; keepalive re-POSTs) for scale in scenarios ${o.scaleScenarios.join(', ')} (opened 200 at a time for at most ${o.scaleOpenSeconds ?? '–'} s), memory = RSS delta of the middle box / tunnels held. The open-files hard limit of the machine caps the scale phase (2 descriptors per tunnel in a middle-box process).`)
  L.push('- **tunnelgate settings**: defaults, except `limits.maxTunnelsPerIp: 0`, `limits.maxUnpairedLegsPerIp: 0` and `limits.maxUnpairedLegs: 100000` (every bench client is 127.0.0.1); a = `--workers 0`, b1/b2 = `--workers 1/2`.')
  L.push('- **HAProxy**: Debian package, `mode tcp`, `balance source`, one server (the source), default threads. **Raw relay**: `src/bench/tcp-relay.ts`, Node `pipe()` with TCP_NODELAY.')
  L.push('- **live** (issue #9): its own method, run and baseline; see its section above (`src/bench/live.ts`). It is left out of the targets of issue #6.')
  L.push('- **Direct** is the same client against the source terminating the tunnel itself: it is the baseline for "added" setup time and delay. The embedded origin does not terminate the tunnel, so it is not used for the baseline; GStreamer\'s RTSP server does, but cannot send stamped RTP at a chosen bitrate.')
  L.push('')
  return L.join('\n')
}

function liveRows (side: LiveSide): string[] {
  const gst = side.id === 'gst'
  const rows = [
    `| viewers | playing | delivered Mbit/s | kbit/s per viewer | lost | late | server CPU-s | server CPU-s/Gbit |${gst ? ' above baseline CPU-s/Gbit |' : ''} viewers per core |${gst ? ' above baseline viewers per core |' : ''} lag p50 / p99 / max ms | server RSS MB |${gst ? '' : ' gst (source) CPU-s |'} held |`,
    `|---|---|---|---|---|---|---|---|${gst ? '---|' : ''}---|${gst ? '---|' : ''}---|---|${gst ? '' : '---|'}---|`
  ]
  const row = (s: LiveStep, label: string): string =>
    `| ${label} | ${s.opened} | ${f(s.deliveredMbps, 1)} | ${f(s.perViewerKbps, 0)} | ${s.lost} | ${s.late} | ${f(s.cpuServer)} | ${f(s.cpuPerGbit, 3)} |${gst ? ` ${f(s.cpuPerGbitAboveBaseline, 3)} |` : ''} ${f(s.viewersPerCore, 0)} |${gst ? ` ${f(s.viewersPerCoreAboveBaseline, 0)} |` : ''} ${f(s.lagMs.p50, 1)} / ${f(s.lagMs.p99, 1)} / ${f(s.lagMs.max, 1)} | ${f(s.serverRssMB, 0)} |${gst ? '' : ` ${f(s.cpuSource)} |`} ${s.held ? 'yes' : '**no**'} |`
  if (side.baseline !== null) rows.push(row(side.baseline, '1 (baseline)'))
  for (const s of side.steps) rows.push(row(s, String(s.viewers)))
  return rows
}

/** The live scenario's section (issue #9), from its own run. */
export function renderLive (lv: LiveResult): string[] {
  const L: string[] = []
  const st = lv.stream
  const o = lv.options
  const tg = lv.sides.find(s => s.id === 'tunnelgate')
  const gst = lv.sides.find(s => s.id === 'gst')
  L.push('## live: viewers per core on one live stream (issue #9)', '')
  L.push(`> From the run of ${lv.date} (profile **${lv.profile}**, ${f(lv.durationSeconds / 60, 1)} min; ${lv.machine.nproc} CPUs, load average at its start ${lv.machine.loadavg}; GStreamer ${lv.machine.gstreamer ?? '–'}).${lv.profile !== 'full' ? ` **A ${lv.profile} run: indicative only.**` : ''}`, '')
  L.push(`One live stream — ${st.width}x${st.height}@${st.fps} H.264 from gst-rtsp-server (\`videotestsrc pattern=${st.pattern}\` → \`x264enc speed-preset=${st.preset} bitrate=${st.kbps}\`, keyframe every ${st.gop} frames), its shared mount \`/${st.mount}\` — served to N viewers by:`, '')
  L.push('- **tunnelgate**: tunnelgate all-in-one (`--workers 0`) with `routes: [{ path: \'/\', live: true }]`, holding ONE RTSP/TCP session to gst-rtsp-server and answering every viewer itself (docs/live-fanout.md). Server CPU = tunnelgate\'s process only; gst-rtsp-server (encoder + one session) is its source, shown beside it.')
  L.push('- **gst**: a fresh gst-rtsp-server serving the same shared media to the same viewers directly (it terminates the QuickTime tunnel itself). Its process also runs the encoder, so its steps are also shown **above baseline**: minus the CPU rate it used with 1 viewer (the encoder and one session).', '')
  L.push(`The same client for both: \`src/bench/load.ts\` tunnels in live mode (GET + POST, DESCRIBE, SETUP of the video track, PLAY), viewers added step by step and kept open, a GET_PARAMETER keepalive round and ${o.warmSeconds} s warm-up before each ${o.liveSeconds} s window. **Lost** = RTP sequence gaps; **late** = viewers that fell more than ${o.liveLagMs} ms behind the stream's own clock during the window (arrival span of their packets minus the RTP timestamp span) or got no video; **held** = no lost, late or failed viewer (a step that fails is measured once more). **Viewers per core** = viewers / (server CPU-s per second): what one fully busy core would serve at that step's cost per viewer (for gst above its baseline).`, '')
  L.push('| side | highest step held (viewers) | viewers per core there | KiB RSS per added viewer | server CPU-s/Gbit per step (gst: above baseline) |', '|---|---|---|---|---|')
  for (const s of [tg, gst]) {
    if (s === undefined) continue
    const per = s.steps.map(x => `${x.viewers}: ${f(s.id === 'gst' ? x.cpuPerGbitAboveBaseline : x.cpuPerGbit, 3)}`).join(', ')
    L.push(`| ${s.id}${s.error !== undefined ? ` (failed: ${s.error})` : ''} | ${s.heldViewers} | ${f(s.viewersPerCore, 0)} | ${f(s.kibPerViewer, 1)} | ${per === '' ? '–' : per} |`)
  }
  const top = o.liveSteps[o.liveSteps.length - 1]
  const allHeld = [tg, gst].filter((s): s is LiveSide => s !== undefined && s.error === undefined && top !== undefined && s.heldViewers === top).map(s => s.id)
  if (allHeld.length > 0) L.push('', `${allHeld.join(' and ')} held every step, up to the largest (${top} viewers): ${allHeld.length > 1 ? 'their limits lie' : 'its limit lies'} above it on this machine, where the load generator shares the two cores.`)
  if (tg !== undefined && gst !== undefined) {
    const pairs = tg.steps.flatMap(a => { const b = gst.steps.find(x => x.viewers === a.viewers); return b !== undefined && a.cpuPerGbit !== null && a.cpuPerGbit > 0 && b.cpuPerGbitAboveBaseline !== null && b.cpuPerGbitAboveBaseline > 0 ? [`${a.viewers} viewers: ${f(a.cpuPerGbit / b.cpuPerGbitAboveBaseline)}×`] : [] })
    L.push('', `CPU per delivered Gbit, tunnelgate ÷ gst-rtsp-server above its baseline, same viewers, same run: ${pairs.length > 0 ? pairs.join(', ') : 'no common step measured'}.`)
  }
  L.push('')
  for (const s of [tg, gst]) {
    if (s === undefined) continue
    L.push(`### live/${s.id}: ${s.name}`, '')
    if (s.error !== undefined) L.push(`**Failed:** ${s.error}`, '')
    if (s.baseline !== null || s.steps.length > 0) L.push(...liveRows(s), '')
  }
  return L
}

interface Series { name: string, color: string, points: Array<[number, number]> }

function panel (x0: number, y0: number, w: number, h: number, title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const pts = series.flatMap(s => s.points)
  const out: string[] = []
  const padL = 56; const padB = 40; const padT = 28; const padR = 12
  const pw = w - padL - padR; const ph = h - padT - padB
  out.push(`<text x="${x0 + w / 2}" y="${y0 + 18}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`)
  out.push(`<rect x="${x0 + padL}" y="${y0 + padT}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`)
  if (pts.length === 0) {
    out.push(`<text x="${x0 + w / 2}" y="${y0 + h / 2}" text-anchor="middle" font-size="12">no data</text>`)
    return out.join('\n')
  }
  const xmax = niceMax(Math.max(...pts.map(p => p[0])))
  const low = Math.min(0, ...pts.map(p => p[1]))
  const ymin = low < 0 ? -niceMax(-low) : 0
  const ymax = niceMax(Math.max(...pts.map(p => p[1]), 1e-9))
  const X = (v: number): number => x0 + padL + (v / xmax) * pw
  const Y = (v: number): number => y0 + padT + ph - ((v - ymin) / (ymax - ymin)) * ph
  for (let i = 0; i <= 5; i++) {
    const xv = (xmax * i) / 5; const yv = ymin + ((ymax - ymin) * i) / 5
    out.push(`<line x1="${X(xv)}" y1="${y0 + padT}" x2="${X(xv)}" y2="${y0 + padT + ph}" stroke="#eee"/><text x="${X(xv)}" y="${y0 + padT + ph + 14}" text-anchor="middle" font-size="10">${tick(xv)}</text>`)
    out.push(`<line x1="${x0 + padL}" y1="${Y(yv)}" x2="${x0 + padL + pw}" y2="${Y(yv)}" stroke="#eee"/><text x="${x0 + padL - 4}" y="${Y(yv) + 3}" text-anchor="end" font-size="10">${tick(yv)}</text>`)
  }
  out.push(`<text x="${x0 + padL + pw / 2}" y="${y0 + h - 6}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`)
  out.push(`<text x="${x0 + 14}" y="${y0 + padT + ph / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${x0 + 14} ${y0 + padT + ph / 2})">${esc(yLabel)}</text>`)
  series.forEach((s, i) => {
    if (s.points.length === 0) return
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`)
    for (const p of s.points) out.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`)
    out.push(`<rect x="${x0 + padL + 8}" y="${y0 + padT + 6 + i * 14}" width="10" height="10" fill="${s.color}"/><text x="${x0 + padL + 22}" y="${y0 + padT + 15 + i * 14}" font-size="10">${esc(s.name)}</text>`)
  })
  return out.join('\n')
}

function niceMax (v: number): number {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * p) return m * p
  return 10 * p
}

function tick (v: number): string { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? String(Number(v.toFixed(1))) : String(Number(v.toFixed(3))) }
function esc (s: string): string { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;') }

export function renderSvg (r: BenchResults): string {
  const boxes = r.scenarios.filter(s => s.id !== 'c')
  const c = r.scenarios.find(s => s.id === 'c')
  const cpu: Series[] = boxes.map(s => ({ name: `${s.id}: ${s.name}`, color: COLORS[s.id] ?? '#000', points: s.sweep.filter(x => x.cpuPerGbit !== null && x.deliveredMbps > 0).map(x => [x.deliveredMbps, x.cpuPerGbit!] as [number, number]) }))
  const delay: Series[] = boxes.map(s => ({
    name: `${s.id}: ${s.name}`,
    color: COLORS[s.id] ?? '#000',
    points: s.sweep.flatMap(x => {
      const d = c?.sweep.find(y => y.tunnels === x.tunnels)
      return d !== undefined && d.delayMs.n > 0 && x.delayMs.n > 0 ? [[x.offeredMbps, x.delayMs.p99 - d.delayMs.p99] as [number, number]] : []
    })
  }))
  const W = 1000; const H = 380
  const lv = r.live
  const liveH = lv === undefined ? 0 : H + 24
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 24 + liveH}" viewBox="0 0 ${W} ${H + 24 + liveH}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H + 24 + liveH}" fill="#fff"/>`,
    panel(0, 0, W / 2, H, 'Middle-box CPU per delivered Gbit', 'delivered Mbit/s', 'CPU-s per Gbit', cpu),
    panel(W / 2, 0, W / 2, H, 'Added p99 one-way delay over direct', 'offered Mbit/s', 'ms', delay),
    `<text x="8" y="${H + 16}" font-size="10" fill="#555">tunnelgate bench (${r.profile}), ${esc(r.date)}, ${r.machine.nproc} × ${esc(r.machine.cpu)}, Node ${r.machine.node}, HAProxy ${esc(r.machine.haproxy ?? '–')}</text>`
  ]
  if (lv !== undefined) {
    const y0 = H + 24
    const color = (id: string): string => id === 'tunnelgate' ? COLORS.a! : COLORS.c!
    const perGbit: Series[] = lv.sides.map(s => ({ name: s.id === 'gst' ? 'gst-rtsp-server (above its 1-viewer baseline)' : 'tunnelgate live fan-out', color: color(s.id), points: s.steps.flatMap(x => { const v = s.id === 'gst' ? x.cpuPerGbitAboveBaseline : x.cpuPerGbit; return v !== null && Number.isFinite(v) ? [[x.viewers, v] as [number, number]] : [] }) }))
    const rss: Series[] = lv.sides.map(s => ({ name: s.id === 'gst' ? 'gst-rtsp-server' : 'tunnelgate', color: color(s.id), points: [...(s.baseline === null ? [] : [s.baseline]), ...s.steps].map(x => [x.opened, x.serverRssMB] as [number, number]) }))
    out.push(panel(0, y0, W / 2, H, 'Live: serving-process CPU per delivered Gbit', 'viewers of one live stream', 'CPU-s per Gbit', perGbit))
    out.push(panel(W / 2, y0, W / 2, H, 'Live: serving-process RSS', 'viewers of one live stream', 'MB', rss))
    out.push(`<text x="8" y="${y0 + H + 16}" font-size="10" fill="#555">live scenario: tunnelgate bench (${lv.profile}), ${esc(lv.date)}, ${lv.stream.width}x${lv.stream.height}@${lv.stream.fps} H.264 ${lv.stream.kbps} kbit/s, GStreamer ${esc(lv.machine.gstreamer ?? '–')}</text>`)
  }
  out.push('</svg>', '')
  return out.join('\n')
}
