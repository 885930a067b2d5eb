/**
 * A throw-away multi-host network made of Linux network namespaces (needs root, iproute2, nft).
 *
 * Layout: one "switch" namespace holding a bridge; every host is its own namespace with `lo` up
 * and an `eth0` veth whose peer sits on that bridge. Addresses come from a private /24 that
 * exists only inside these namespaces, and no namespace has a default route, so traffic can only
 * go between the namespaces of this test bed. Nothing is created in the root namespace.
 *
 * Names are `<prefix><pid>-<host>` (prefix like `tgmh`), so parallel runs never clash; at
 * creation, namespaces left behind by runs whose process is gone are deleted. `destroy()` kills
 * every process started in the bed and deletes every namespace; it is also registered on process
 * exit and on SIGINT/SIGTERM, so a failing or interrupted test still cleans up.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { runPeer, type PeerResult, type RunPeerOptions } from './peers.js'

export interface Host { name: string, ns: string, ip: string }

export interface BedOptions {
  /** Name prefix, letters only (default `tgmh`); the pid is appended. */
  prefix?: string
  /** Third octet of 10.213.X.0/24 (default 7). */
  subnet?: number
  /** Host name → last octet. */
  hosts: Record<string, number>
}

export interface Proc {
  host: Host
  label: string
  child: ChildProcess
  /** stdout+stderr so far (bounded). */
  output: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

function ip (...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

export function listNamespaces (): string[] {
  return ip('netns', 'list').split('\n').map(l => l.trim().split(/\s+/)[0] ?? '').filter(n => n !== '')
}

function pidAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

/** Delete namespaces `<prefix><pid>-*` whose pid is not a live process (or is this process). */
export function removeStale (prefix: string): string[] {
  const re = new RegExp(`^${prefix}(\\d+)-`)
  const removed: string[] = []
  for (const ns of listNamespaces()) {
    const m = re.exec(ns)
    if (m === null) continue
    const pid = Number(m[1])
    if (pid !== process.pid && pidAlive(pid)) continue
    killNamespaceProcesses(ns)
    try { ip('netns', 'del', ns); removed.push(ns) } catch {}
  }
  return removed
}

/** SIGKILL whatever still runs inside a namespace (`ip netns pids`). */
function killNamespaceProcesses (ns: string): void {
  let pids: string[] = []
  try { pids = ip('netns', 'pids', ns).split('\n').filter(p => /^\d+$/.test(p.trim())) } catch {}
  for (const p of pids) { try { process.kill(Number(p), 'SIGKILL') } catch {} }
}

export class NetnsBed {
  readonly prefix: string
  readonly subnet: string
  readonly hosts: Record<string, Host> = {}
  readonly #procs: Proc[] = []
  readonly #namespaces: string[] = []
  #destroyed = false
  readonly #onExit = (): void => { this.destroySync() }
  readonly #onSignal = (sig: NodeJS.Signals): void => { this.destroySync(); process.kill(process.pid, sig) }

  private constructor (prefix: string, subnet: number) {
    this.prefix = `${prefix}${process.pid}-`
    this.subnet = `10.213.${subnet}`
  }

  /**
   * Build the bed. Throws with a clear message when namespaces cannot be created (not root,
   * no iproute2, no CAP_SYS_ADMIN in this container...).
   */
  static create (opts: BedOptions): NetnsBed {
    const prefix = opts.prefix ?? 'tgmh'
    if (!/^[a-z]+$/.test(prefix)) throw new Error(`netns prefix must be lower-case letters (got '${prefix}')`)
    const bed = new NetnsBed(prefix, opts.subnet ?? 7)
    try {
      removeStale(prefix)
    } catch (e) {
      throw new Error(`cannot list network namespaces (is iproute2 installed?): ${(e as Error).message}`)
    }
    process.once('exit', bed.#onExit)
    process.once('SIGINT', bed.#onSignal)
    process.once('SIGTERM', bed.#onSignal)
    try {
      const sw = bed.#addNs('sw')
      ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge')
      ip('-n', sw, 'link', 'set', 'br0', 'up')
      for (const [name, octet] of Object.entries(opts.hosts)) {
        if (!/^[a-z0-9]{1,10}$/.test(name)) throw new Error(`host name '${name}' must be 1-10 of [a-z0-9]`)
        const ns = bed.#addNs(name)
        const port = `p-${name}`
        ip('-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
        ip('-n', sw, 'link', 'set', port, 'master', 'br0')
        ip('-n', sw, 'link', 'set', port, 'up')
        const addr = `${bed.subnet}.${octet}`
        ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
        ip('-n', ns, 'link', 'set', 'eth0', 'up')
        bed.hosts[name] = { name, ns, ip: addr }
      }
    } catch (e) {
      bed.destroySync()
      const err = e as Error & { stderr?: string }
      throw new Error(
        `cannot build the network-namespace test bed (needs root with CAP_NET_ADMIN/CAP_SYS_ADMIN, iproute2, veth and bridge support): ${(err.stderr ?? '').trim() || err.message}`
      )
    }
    return bed
  }

  #addNs (name: string): string {
    const ns = this.prefix + name
    ip('netns', 'add', ns)
    this.#namespaces.push(ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    return ns
  }

  get namespaces (): string[] { return [...this.#namespaces] }

  host (name: string): Host {
    const h = this.hosts[name]
    if (h === undefined) throw new Error(`no host '${name}' in the bed`)
    return h
  }

  /** Load an nftables ruleset into a host's namespace. */
  nft (host: Host, ruleset: string): void {
    execFileSync('ip', ['netns', 'exec', host.ns, 'nft', '-f', '-'], {
      input: ruleset,
      stdio: ['pipe', 'pipe', 'pipe']
    })
  }

  nftList (host: Host): string {
    return execFileSync('ip', ['netns', 'exec', host.ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })
  }

  /** Run a program to completion inside a host (see runPeer). */
  /**
   * The firewalled client of the design card: `host` may send only to TCP port 80 (and loopback,
   * and replies); everything else leaving it is dropped and counted (rule comment "dropped").
   */
  port80Only (host: Host): void {
    this.nft(host, [
      'table inet tgfw {',
      '  chain output {',
      '    type filter hook output priority 0; policy drop;',
      '    oif "lo" accept',
      '    ct state established,related accept',
      '    tcp dport 80 accept',
      '    counter comment "dropped"',
      '  }',
      '}',
      ''
    ].join('\n'))
  }

  run (host: Host, cmd: string, args: string[], opts: RunPeerOptions = {}): Promise<PeerResult> {
    return runPeer('ip', ['netns', 'exec', host.ns, cmd, ...args], opts)
  }

  /** Start a long-running program inside a host; killed by destroy(). */
  start (host: Host, label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
    // `ip netns exec` execs the program, so the child's pid is the program's own.
    const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    let out = ''
    const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-20_000) }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
      child.once('exit', (code, signal) => resolve({ code, signal }))
      child.once('error', () => resolve({ code: -1, signal: null }))
    })
    const p: Proc = { host, label, child, output: () => out, exited }
    this.#procs.push(p)
    return p
  }

  /** SIGKILL one process and wait for it to be gone. */
  async kill (p: Proc): Promise<void> {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    await p.exited
  }

  /** Kill every process, delete every namespace. Idempotent. */
  async destroy (): Promise<void> {
    for (const p of this.#procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM')
    await Promise.race([
      Promise.all(this.#procs.map(p => p.exited)),
      new Promise(resolve => setTimeout(resolve, 2000).unref())
    ])
    this.destroySync()
  }

  destroySync (): void {
    if (this.#destroyed) return
    this.#destroyed = true
    for (const p of this.#procs) { try { p.child.kill('SIGKILL') } catch {} }
    for (const ns of [...this.#namespaces].reverse()) {
      killNamespaceProcesses(ns)
      try { ip('netns', 'del', ns) } catch {}
    }
    process.removeListener('exit', this.#onExit)
    process.removeListener('SIGINT', this.#onSignal)
    process.removeListener('SIGTERM', this.#onSignal)
  }
}
