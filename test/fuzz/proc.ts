/**
 * What /proc says about the gateway's processes: descriptors and resident memory, the relay worker
 * children of a process, and for the failure message a census of the descriptors (TCP sockets by
 * state and local port, and sockets the kernel no longer lists in any TCP table: closed in TCP but
 * still held by the process).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export interface ProcFigures { role: string, pid: number, fds: number, rssKiB: number }

export function alive (pid: number): boolean {
  try { return !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')) } catch { return false }
}

export function figures (role: string, pid: number): ProcFigures | null {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return { role, pid, fds, rssKiB: rss === null ? 0 : Number(rss[1]) }
  } catch { return null }
}

/** Live children of `pid` whose command line matches `cmdline` (relay workers: /worker\.(ts|js)/), by pid. */
export function childrenOf (pid: number, cmdline: RegExp): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== pid) continue
      if (cmdline.test(readFileSync(`/proc/${d}/cmdline`, 'latin1')) && alive(Number(d))) out.push(Number(d))
    } catch {}
  }
  return out.sort((a, b) => a - b)
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING'
}

function tcpTable (pid: number): Map<string, { state: string, local: number, remote: number }> {
  const m = new Map<string, { state: string, local: number, remote: number }>()
  for (const f of ['tcp', 'tcp6']) {
    let text = ''
    try { text = readFileSync(`/proc/${pid}/net/${f}`, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const p = line.trim().split(/\s+/)
      if (p.length < 10) continue
      m.set(p[9]!, {
        state: TCP_STATES[p[3]!] ?? p[3]!,
        local: parseInt(p[1]!.split(':')[1]!, 16),
        remote: parseInt(p[2]!.split(':')[1]!, 16)
      })
    }
  }
  return m
}

/**
 * Descriptors of `pid` by kind: `tcp <STATE> :<local port>` (the remote port instead when the local
 * one is not a listening port, i.e. a connection the process opened), `udp`, `unix`, `socket not in
 * TCP tables` (closed in TCP, still held), `pipe`, `file`, `anon` (epoll, eventfd, timers).
 */
export function census (pid: number, listening: readonly number[] = []): Record<string, number> {
  const tcp = tcpTable(pid)
  const inodes = (file: string, column: number): Set<string> => {
    try {
      return new Set(
        readFileSync(`/proc/${pid}/net/${file}`, 'utf8')
          .split('\n')
          .slice(1)
          .map(l => l.trim().split(/\s+/)[column] ?? '')
      )
    } catch {
      return new Set()
    }
  }
  const unix = inodes('unix', 6)
  const udp = new Set([...inodes('udp', 9), ...inodes('udp6', 9)])
  const out: Record<string, number> = {}
  const add = (k: string): void => { out[k] = (out[k] ?? 0) + 1 }
  let fds: string[] = []
  try { fds = readdirSync(`/proc/${pid}/fd`) } catch { return out }
  for (const fd of fds) {
    let target = ''
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue }
    const sock = /^socket:\[(\d+)\]$/.exec(target)
    if (sock === null) {
      add(target.startsWith('pipe:') ? 'pipe' : target.startsWith('anon_inode:') ? 'anon' : 'file')
      continue
    }
    const t = tcp.get(sock[1]!)
    if (t !== undefined) {
      add(`tcp ${t.state} ${listening.includes(t.local) || t.state === 'LISTEN' ? `:${t.local}` : `->:${t.remote}`}`)
    } else if (unix.has(sock[1]!)) add('unix')
    else if (udp.has(sock[1]!)) add('udp')
    else add('socket not in TCP tables')
  }
  return out
}
