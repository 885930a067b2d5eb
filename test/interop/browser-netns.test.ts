/**
 * The player page behind the port-80-only client of the multi-host test bed (network namespaces,
 * test/helpers/netns.ts): real `tunnelgate` processes (built dist/) on separate hosts, and
 * Chromium itself running inside the client namespace, whose nftables egress firewall lets only
 * TCP port 80 (and replies) out.
 *
 *   client (10.213.8.10)   output policy drop: lo, established/related, tcp dport 80 only; Chromium runs here
 *   portal a/b (.21/.22)   tunnelgate portal --port 80 --relay r1 --relay r2
 *   relay r1/r2 (.31/.32)  tunnelgate relay --port 8081 --backend o1:554
 *   origin o1 (.41)        tunnelgate origin --port 554
 *
 * Checks: the client cannot reach a relay's port or the origin directly (control: a portal can);
 * /watch/demo through portal A and /watch/live/demo through portal B play at once (currentTime
 * +5 s, no error, pixels not black), their WebSockets on port 80 only.
 * Needs root, iproute2, nft, chromium and a built dist/; it fails, never skips, without them.
 */
import t from 'tap'
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { NetnsBed, type Host, type Proc } from '../helpers/netns.js'
import { CHROMIUM, checkPlays, installErrorProbe, videoErrors, watchPage } from '../helpers/browser.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = join(ROOT, 'bin', 'tunnelgate.js')
const CLIENT_SCRIPT = join(ROOT, 'test', 'helpers', 'raw-tunnel-client.mjs')
const ENV = {
  ...process.env,
  TUNNELGATE_LOG_LEVEL: 'warn',
  TUNNELGATE_CLUSTER_SECRET: 'browser-netns-cluster-secret-01'
}

t.test('browser behind a port-80-only firewall plays through two portals and two relays', async t => {
  if (process.getuid?.() !== 0) { t.fail('needs root to create network namespaces and nftables rules'); return }
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
    t.fail('dist/ is missing: run `npm run build` (or `npm test`, which builds first)'); return
  }
  if (!existsSync(CHROMIUM)) { t.fail(`${CHROMIUM} is missing (apt-get install chromium)`); return }
  const bed = NetnsBed.create({
    prefix: 'tgbw',
    subnet: 8,
    hosts: { client: 10, pa: 21, pb: 22, r1: 31, r2: 32, o1: 41 }
  })
  t.teardown(() => bed.destroy())
  const h = (n: string): Host => bed.host(n)
  const client = h('client')
  const portals = [h('pa'), h('pb')]
  const relays = [h('r1'), h('r2')]
  const origin = h('o1')
  bed.port80Only(client)
  const procs: Proc[] = []
  const dump = (): string =>
    procs.map(p =>
      `--- ${p.label} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})\n${p.output().slice(-2000)}`).join('\n')
  const wait = async (from: Host, tcp: string[], timeoutMs: number): Promise<boolean> =>
    (await bed.run(from, 'node', [CLIENT_SCRIPT, JSON.stringify({ mode: 'wait', tcp, timeoutMs })],
      { timeoutMs: timeoutMs + 5000 })).code === 0

  procs.push(bed.start(origin, 'o1', 'node', [BIN, 'origin', '--port', '554', '--host', '0.0.0.0'], ENV))
  for (const r of relays) procs.push(bed.start(r, r.name, 'node', [BIN, 'relay', '--port', '8081', '--host', '0.0.0.0', '--backend', `rtsp://${origin.ip}:554`], ENV))
  if (!await wait(h('pa'), [`${origin.ip}:554`, ...relays.map(r => `${r.ip}:8081`)], 20_000)) {
    t.fail(`origin/relays did not start\n${dump()}`); return
  }
  for (const p of portals) procs.push(bed.start(p, p.name, 'node', [BIN, 'portal', '--port', '80', '--host', '0.0.0.0', ...relays.flatMap(r => ['--relay', `${r.ip}:8081`])], ENV))
  if (!await wait(h('r1'), portals.map(p => `${p.ip}:80`), 20_000)) {
    t.fail(`portals did not start\n${dump()}`); return
  }

  t.notOk(await wait(client, [`${relays[0]!.ip}:8081`], 2000), 'the client cannot reach a relay port (firewall)')
  t.notOk(await wait(client, [`${origin.ip}:554`], 2000), 'nor the origin')
  t.ok(await wait(h('pa'), [`${relays[0]!.ip}:8081`], 2000), 'control: a portal can')

  // Chromium inside the client namespace; playwright talks to it over a pipe, which `ip netns exec` keeps.
  const dir = mkdtempSync(join(tmpdir(), 'tg-netns-browser-'))
  const wrapper = join(dir, 'chromium-in-client.sh')
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${client.ns} ${CHROMIUM} "$@"\n`)
  chmodSync(wrapper, 0o755)
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000
  })
  t.teardown(async () => { await browser.close() })
  const ctx = await browser.newContext()
  const pages = await Promise.all([ctx.newPage(), ctx.newPage()])
  const logs = pages.map(p => watchPage(p))
  const wsUrls: string[] = []
  for (const p of pages) { await installErrorProbe(p); p.on('websocket', ws => wsUrls.push(ws.url())) }
  try {
    const runs = await Promise.all([
      checkPlays(pages[0]!, `http://${portals[0]!.ip}/watch/demo`, 5, 45_000),
      checkPlays(pages[1]!, `http://${portals[1]!.ip}/watch/live/demo`, 5, 45_000)
    ])
    for (const [i, r] of runs.entries()) {
      t.ok(r.t1 - r.t0 >= 5, `page ${i}: currentTime advanced ${(r.t1 - r.t0).toFixed(2)} s`)
      t.ok(r.share > 0.5, `page ${i}: pixels not black`)
      t.same(await videoErrors(pages[i]!), [], `page ${i}: no video error`)
      t.same(logs[i]!.errors, [], `page ${i}: no page error`)
    }
    t.same(wsUrls.sort(), portals.map(p => `ws://${p.ip}/rtsp-over-websocket`).sort(),
      'each page\'s WebSocket went to its portal on port 80')
  } catch (e) {
    t.fail(`${(e as Error).message}\n${dump()}`)
  }
  await ctx.close()
})
