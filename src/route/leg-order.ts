/**
 * Where a routed leg goes, for both routers (local workers, workers.ts; remote relay nodes,
 * remote-relays.ts): the order in which the candidate nodes (those up) are tried. A POST goes first
 * to the node holding its cookie's GET, wherever hashing would send it now; then the nodes that take
 * new tunnels in weighted-rendezvous order of the leg's key, then the draining ones in that order
 * (so a cluster that drains everywhere still serves). Pure: every portal computes the same order.
 */
import { rankNodes } from '../balancer/hrw.js'

export interface LegNode { readonly id: string, readonly draining: boolean }

/** `holder`: the id of the node holding the leg's GET (POSTs only), when known. */
export function legOrder<N extends LegNode> (key: string, nodes: readonly N[], holder?: string): N[] {
  const byId = new Map(nodes.map(n => [n.id, n]))
  const ranked = rankNodes(key, nodes.map(n => ({ id: n.id, weight: 1 }))).map(id => byId.get(id)!)
  const order = [...ranked.filter(n => !n.draining), ...ranked.filter(n => n.draining)]
  const held = holder === undefined ? undefined : byId.get(holder)
  return held === undefined ? order : [held, ...order.filter(n => n !== held)]
}
