/**
 * Mutated real captures: a captured GET/POST pair under a fresh cookie, its heads and decoded
 * RTSP messages changed at the token level (header lines moved between messages, of the same
 * capture and of the others), its message stream reordered, and sometimes its final bytes
 * changed at the byte level too.
 */
import type { Rng } from '../prng.js'
import { cloneMessage, isMessage, serialize, setHeader, type StreamUnit, type TextMessage } from '../message.js'
import { conn, split, type CasePlan, type ConnPlan } from '../plan.js'
import type { CapturedPair } from '../corpus.js'
import { cookie as makeCookie } from '../grammar/lexicon.js'
import { mutateBytes, mutateMessage, mutateStream } from '../mutate.js'
import { streamChunks } from './stream-chunks.js'

function heads (corpus: readonly CapturedPair[]): TextMessage[] {
  return corpus.flatMap(p => [p.getHead, p.postHead, ...p.postUnits.filter(isMessage)])
}

function maybeMutate (m: TextMessage, rng: Rng, donors: TextMessage[], p: number): TextMessage {
  return rng.chance(p) ? mutateMessage(m, rng, donors) : cloneMessage(m)
}

export function captureCase (rng: Rng, corpus: readonly CapturedPair[]): CasePlan {
  const pair = rng.pick(corpus)
  const donors = heads(corpus)
  const c = makeCookie(rng)
  const from = `127.0.${rng.int(1, 4)}.${rng.int(1, 16)}`
  const getHead = maybeMutate(pair.getHead, rng, donors, 0.5)
  const postHead = maybeMutate(pair.postHead, rng, donors, 0.5)
  setHeader(getHead, 'x-sessioncookie', c)
  setHeader(postHead, 'x-sessioncookie', c)
  let units: StreamUnit[] = pair.postUnits.map(u => isMessage(u) ? maybeMutate(u, rng, donors, 0.25) : Buffer.from(u))
  if (rng.chance(0.3)) units = mutateStream(units, rng, rng.pick(corpus).postUnits)
  const bytewise = rng.chance(0.15)
  const getBytes = Buffer.concat([serialize(getHead), pair.getUpstream])
  const get = conn(rng, split(bytewise && rng.chance(0.5) ? mutateBytes(getBytes, rng) : getBytes, rng), {
    from,
    holdMs: rng.int(800, 3500)
  })
  const postChunks = [...split(serialize(postHead), rng), ...streamChunks(rng, units, 'base64')]
  if (bytewise) {
    const i = rng.int(0, postChunks.length - 1)
    postChunks[i] = { ...postChunks[i]!, bytes: mutateBytes(postChunks[i]!.bytes, rng) }
  }
  const post: ConnPlan = conn(rng, postChunks, { from, startMs: rng.int(5, 100), holdMs: rng.int(300, 2500) })
  get.holdMs = Math.max(get.holdMs, post.startMs + post.holdMs)
  return { kind: `capture-${pair.source}`, conns: rng.chance(0.1) ? [rng.pick([get, post])] : [get, post] }
}
