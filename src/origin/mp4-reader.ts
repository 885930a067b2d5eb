/**
 * A small, careful ISO-BMFF (MP4/MOV) reader: sample tables only, never the media data.
 *
 * It reads the top-level box headers with positional reads, loads the `moov` box whole and
 * walks it: per track `tkhd`, `mdhd`, `hdlr`, `elst`, and the sample tables `stsd` (avc1/avc3
 * with `avcC`, mp4a with `esds`), `stts`, `ctts`, `stsc`, `stsz`/`stz2`, `stco`/`co64`, `stss`.
 * The result is one flat sample list per track (dts, pts, duration, size, file offset, sync
 * flag), in the track's timescale, shifted by the first edit's media_time so that the
 * presentation timeline starts at 0 (AAC priming samples come out with a negative pts).
 *
 * Fragmented MP4 (moof) is not supported. Every structural problem throws Mp4Error.
 */
import { open, type FileHandle } from 'node:fs/promises'

export class Mp4Error extends Error { override name = 'Mp4Error' }

export interface Mp4Sample {
  /** Decode time, track timescale, edit-shifted. */
  dts: number
  /** Presentation time (dts + composition offset), track timescale, edit-shifted. */
  pts: number
  duration: number
  size: number
  /** Absolute file offset of the sample's bytes. */
  offset: number
  isSync: boolean
}

export interface Mp4VideoTrack {
  kind: 'video'
  id: number
  /** Sample entry type: avc1/avc3 are supported; anything else is reported as such. */
  codec: string
  timescale: number
  durationSec: number
  width: number
  height: number
  /** NAL length field size from avcC (1, 2 or 4). */
  nalLengthSize: number
  sps: Buffer[]
  pps: Buffer[]
  samples: Mp4Sample[]
}

export interface Mp4AudioTrack {
  kind: 'audio'
  id: number
  /** 'mp4a' with objectTypeIndication 0x40/0x66/0x67/0x68 is AAC; others are reported as found. */
  codec: string
  objectType: number
  timescale: number
  durationSec: number
  sampleRate: number
  channels: number
  /** AudioSpecificConfig bytes from esds (empty when absent). */
  asc: Buffer
  samples: Mp4Sample[]
}

export interface Mp4OtherTrack {
  kind: 'other'
  id: number
  handler: string
  codec: string
}

export type Mp4Track = Mp4VideoTrack | Mp4AudioTrack | Mp4OtherTrack

export interface Mp4File {
  path: string
  durationSec: number
  tracks: Mp4Track[]
}

const MAX_MOOV = 256 * 1024 * 1024

/** Read the sample tables of an MP4/MOV file. */
export async function readMp4 (path: string): Promise<Mp4File> {
  const fh = await open(path, 'r')
  try {
    const moov = await loadMoov(fh)
    return parseMoov(path, moov)
  } finally { await fh.close() }
}

async function loadMoov (fh: FileHandle): Promise<Buffer> {
  const size = (await fh.stat()).size
  const head = Buffer.alloc(16)
  let pos = 0
  let sawFtyp = false
  while (pos + 8 <= size) {
    const { bytesRead } = await fh.read(head, 0, 16, pos)
    if (bytesRead < 8) break
    let boxSize = head.readUInt32BE(0)
    const type = head.toString('latin1', 4, 8)
    let headerLen = 8
    if (!/^[\x20-\x7e]{4}$/.test(type)) throw new Mp4Error(`not an MP4 file (bad box type at ${pos})`)
    if (boxSize === 1) {
      if (bytesRead < 16) throw new Mp4Error('truncated 64-bit box header')
      boxSize = Number(head.readBigUInt64BE(8))
      headerLen = 16
    } else if (boxSize === 0) { boxSize = size - pos }
    if (boxSize < headerLen) throw new Mp4Error(`bad size ${boxSize} for box '${type}' at ${pos}`)
    if (type === 'ftyp') sawFtyp = true
    if (pos === 0 && !['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot'].includes(type)) {
      throw new Mp4Error(`not an MP4 file (first box '${type}')`)
    }
    if (type === 'moov') {
      if (boxSize > MAX_MOOV) throw new Mp4Error(`moov box too large (${boxSize} bytes)`)
      if (pos + boxSize > size) throw new Mp4Error('truncated moov box')
      const buf = Buffer.alloc(boxSize - headerLen)
      await fh.read(buf, 0, buf.length, pos + headerLen)
      return buf
    }
    if (type === 'moof') throw new Mp4Error('fragmented MP4 is not supported')
    pos += boxSize
  }
  throw new Mp4Error(sawFtyp ? 'no moov box' : 'not an MP4 file (no moov box)')
}

interface Box { type: string, data: Buffer }

/** The child boxes of a container payload. */
function children (buf: Buffer): Box[] {
  const out: Box[] = []
  let off = 0
  while (off + 8 <= buf.length) {
    let size = buf.readUInt32BE(off)
    const type = buf.toString('latin1', off + 4, off + 8)
    let hl = 8
    if (size === 1) {
      if (off + 16 > buf.length) throw new Mp4Error(`truncated box '${type}'`)
      size = Number(buf.readBigUInt64BE(off + 8))
      hl = 16
    } else if (size === 0) { size = buf.length - off }
    if (size < hl || off + size > buf.length) throw new Mp4Error(`bad size ${size} for box '${type}'`)
    out.push({ type, data: buf.subarray(off + hl, off + size) })
    off += size
  }
  return out
}

function child (buf: Buffer | undefined, type: string): Buffer | undefined {
  if (buf === undefined) return undefined
  return children(buf).find((b) => b.type === type)?.data
}

function need (buf: Buffer | undefined, what: string): Buffer {
  if (buf === undefined) throw new Mp4Error(`missing '${what}' box`)
  return buf
}

function parseMoov (path: string, moov: Buffer): Mp4File {
  const mvhd = need(child(moov, 'mvhd'), 'mvhd')
  const v = mvhd[0]
  const mvTimescale = v === 1 ? mvhd.readUInt32BE(20) : mvhd.readUInt32BE(12)
  const mvDuration = v === 1 ? Number(mvhd.readBigUInt64BE(24)) : mvhd.readUInt32BE(16)
  const tracks: Mp4Track[] = []
  for (const box of children(moov)) { if (box.type === 'trak') tracks.push(parseTrak(box.data)) }
  let durationSec = mvTimescale > 0 ? mvDuration / mvTimescale : 0
  for (const t of tracks) if (t.kind !== 'other') durationSec = Math.max(durationSec, t.durationSec)
  return { path, durationSec, tracks }
}

function parseTrak (trak: Buffer): Mp4Track {
  const tkhd = need(child(trak, 'tkhd'), 'tkhd')
  const id = tkhd[0] === 1 ? tkhd.readUInt32BE(20) : tkhd.readUInt32BE(12)
  const mdia = need(child(trak, 'mdia'), 'mdia')
  const mdhd = need(child(mdia, 'mdhd'), 'mdhd')
  const timescale = mdhd[0] === 1 ? mdhd.readUInt32BE(20) : mdhd.readUInt32BE(12)
  if (timescale === 0) throw new Mp4Error(`track ${id}: zero timescale`)
  const hdlr = need(child(mdia, 'hdlr'), 'hdlr')
  const handler = hdlr.toString('latin1', 8, 12)
  const stbl = need(child(need(child(mdia, 'minf'), 'minf'), 'stbl'), 'stbl')
  const stsd = need(child(stbl, 'stsd'), 'stsd')
  const entries = children(stsd.subarray(8))
  const entry = entries[0]
  if (entry === undefined) throw new Mp4Error(`track ${id}: empty stsd`)
  if (handler !== 'vide' && handler !== 'soun') return { kind: 'other', id, handler, codec: entry.type }
  const mediaTime = firstMediaTime(child(trak, 'edts'))
  const samples = buildSamples(stbl, mediaTime, id)
  const end = samples.length === 0 ? 0 : samples[samples.length - 1]!.pts + samples[samples.length - 1]!.duration
  const durationSec = Math.max(0, end) / timescale
  if (handler === 'vide') {
    const e = entry.data
    const width = e.length >= 28 ? e.readUInt16BE(24) : 0
    const height = e.length >= 28 ? e.readUInt16BE(26) : 0
    const base = { kind: 'video' as const, id, codec: entry.type, timescale, durationSec, width, height, samples }
    const avcC = (entry.type === 'avc1' || entry.type === 'avc3') && e.length > 78
      ? child(e.subarray(78), 'avcC')
      : undefined
    if (avcC === undefined) return { ...base, nalLengthSize: 4, sps: [], pps: [] }
    return { ...base, ...parseAvcC(avcC) }
  }
  return parseAudioEntry(id, entry, timescale, durationSec, samples)
}

/** The media_time of the first non-empty edit (0 when there is no edit list). */
function firstMediaTime (edts: Buffer | undefined): number {
  const elst = child(edts, 'elst')
  if (elst === undefined) return 0
  const v = elst[0]
  const count = elst.readUInt32BE(4)
  let off = 8
  for (let i = 0; i < count; i++) {
    const mediaTime = v === 1 ? Number(elst.readBigInt64BE(off + 8)) : elst.readInt32BE(off + 4)
    off += v === 1 ? 20 : 12
    if (mediaTime >= 0) return mediaTime
  }
  return 0
}

export function parseAvcC (avcC: Buffer): { nalLengthSize: number, sps: Buffer[], pps: Buffer[] } {
  if (avcC.length < 7 || avcC[0] !== 1) throw new Mp4Error('bad avcC')
  const nalLengthSize = (avcC[4]! & 3) + 1
  if (nalLengthSize === 3) throw new Mp4Error('avcC: 3-byte NAL lengths are not supported')
  let off = 6
  const read = (n: number): Buffer[] => {
    const out: Buffer[] = []
    for (let i = 0; i < n; i++) {
      if (off + 2 > avcC.length) throw new Mp4Error('truncated avcC')
      const len = avcC.readUInt16BE(off)
      if (off + 2 + len > avcC.length) throw new Mp4Error('truncated avcC')
      out.push(Buffer.from(avcC.subarray(off + 2, off + 2 + len)))
      off += 2 + len
    }
    return out
  }
  const sps = read(avcC[5]! & 31)
  if (off >= avcC.length) throw new Mp4Error('truncated avcC')
  const nPps = avcC[off++]!
  const pps = read(nPps)
  return { nalLengthSize, sps, pps }
}

const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]

function parseAudioEntry (
  id: number, entry: Box, timescale: number, durationSec: number, samples: Mp4Sample[]
): Mp4AudioTrack {
  const e = entry.data
  let channels = e.length >= 18 ? e.readUInt16BE(16) : 0
  let sampleRate = e.length >= 28 ? e.readUInt32BE(24) >>> 16 : 0
  const soundVersion = e.length >= 10 ? e.readUInt16BE(8) : 0
  const childStart = 28 + (soundVersion === 1 ? 16 : soundVersion === 2 ? 36 : 0)
  let objectType = 0
  let asc: Buffer = Buffer.alloc(0)
  if (entry.type === 'mp4a' && e.length > childStart) {
    const kids = children(e.subarray(childStart))
    let esds = kids.find((b) => b.type === 'esds')?.data
    // QuickTime puts esds inside a 'wave' box.
    if (esds === undefined) esds = child(kids.find((b) => b.type === 'wave')?.data, 'esds')
    if (esds !== undefined) ({ objectType, asc } = parseEsds(esds))
  }
  if (asc.length >= 2) {
    const idx = ((asc[0]! & 7) << 1) | (asc[1]! >> 7)
    if (idx < AAC_RATES.length) sampleRate = AAC_RATES[idx]!
    else if (idx === 15 && asc.length >= 5) {
      sampleRate = ((asc[1]! & 0x7f) << 17) | (asc[2]! << 9) | (asc[3]! << 1) | (asc[4]! >> 7)
    }
    const ch = (asc[1]! >> 3) & 15
    if (ch > 0) channels = ch
  }
  if (sampleRate === 0) sampleRate = timescale
  return {
    kind: 'audio', id, codec: entry.type, objectType, timescale, durationSec, sampleRate, channels, asc, samples
  }
}

/** ES_Descriptor → DecoderConfigDescriptor (objectTypeIndication) → DecoderSpecificInfo (ASC). */
export function parseEsds (esds: Buffer): { objectType: number, asc: Buffer } {
  let off = 4
  let objectType = 0
  let asc: Buffer = Buffer.alloc(0)
  const readDesc = (): { tag: number, len: number } => {
    if (off >= esds.length) throw new Mp4Error('truncated esds')
    const tag = esds[off++]!
    let len = 0
    for (let i = 0; i < 4; i++) {
      if (off >= esds.length) throw new Mp4Error('truncated esds')
      const b = esds[off++]!
      len = (len << 7) | (b & 0x7f)
      if ((b & 0x80) === 0) break
    }
    return { tag, len }
  }
  const es = readDesc()
  if (es.tag !== 3) throw new Mp4Error('esds without ES_Descriptor')
  off += 2
  const flags = esds[off++]!
  if (flags & 0x80) off += 2
  if (flags & 0x40) off += 1 + (esds[off] ?? 0)
  if (flags & 0x20) off += 2
  const dc = readDesc()
  if (dc.tag !== 4) throw new Mp4Error('esds without DecoderConfigDescriptor')
  const dcEnd = off + dc.len
  objectType = esds[off] ?? 0
  off += 13
  if (off < dcEnd && off < esds.length) {
    const dsi = readDesc()
    if (dsi.tag === 5) asc = Buffer.from(esds.subarray(off, Math.min(esds.length, off + dsi.len)))
  }
  return { objectType, asc }
}

function buildSamples (stbl: Buffer, mediaTime: number, id: number): Mp4Sample[] {
  const stts = need(child(stbl, 'stts'), 'stts')
  const stsc = need(child(stbl, 'stsc'), 'stsc')
  const stco = child(stbl, 'stco')
  const co64 = child(stbl, 'co64')
  const ctts = child(stbl, 'ctts')
  const stss = child(stbl, 'stss')
  // Sizes.
  const sizes: number[] = []
  const stsz = child(stbl, 'stsz')
  if (stsz !== undefined) {
    const fixed = stsz.readUInt32BE(4)
    const count = stsz.readUInt32BE(8)
    if (fixed === 0 && 12 + count * 4 > stsz.length) throw new Mp4Error(`track ${id}: truncated stsz`)
    for (let i = 0; i < count; i++) sizes.push(fixed !== 0 ? fixed : stsz.readUInt32BE(12 + i * 4))
  } else {
    const stz2 = need(child(stbl, 'stz2'), 'stsz')
    const field = stz2[7]!
    const count = stz2.readUInt32BE(8)
    for (let i = 0; i < count; i++) {
      if (field === 8) sizes.push(stz2[12 + i]!)
      else if (field === 16) sizes.push(stz2.readUInt16BE(12 + i * 2))
      else sizes.push((stz2[12 + (i >> 1)]! >> ((i & 1) === 0 ? 4 : 0)) & 15)
    }
  }
  const n = sizes.length
  // Chunk offsets.
  const chunkOffsets: number[] = []
  if (stco !== undefined) {
    const c = stco.readUInt32BE(4)
    if (8 + c * 4 > stco.length) throw new Mp4Error(`track ${id}: truncated stco`)
    for (let i = 0; i < c; i++) chunkOffsets.push(stco.readUInt32BE(8 + i * 4))
  } else if (co64 !== undefined) {
    const c = co64.readUInt32BE(4)
    if (8 + c * 8 > co64.length) throw new Mp4Error(`track ${id}: truncated co64`)
    for (let i = 0; i < c; i++) chunkOffsets.push(Number(co64.readBigUInt64BE(8 + i * 8)))
  } else { throw new Mp4Error(`track ${id}: missing 'stco' box`) }
  const samples: Mp4Sample[] = new Array(n)
  // Sample → chunk (stsc) and offsets.
  const stscCount = stsc.readUInt32BE(4)
  if (8 + stscCount * 12 > stsc.length) throw new Mp4Error(`track ${id}: truncated stsc`)
  let s = 0
  for (let e = 0; e < stscCount && s < n; e++) {
    const first = stsc.readUInt32BE(8 + e * 12) - 1
    const perChunk = stsc.readUInt32BE(12 + e * 12)
    const nextFirst = e + 1 < stscCount ? stsc.readUInt32BE(8 + (e + 1) * 12) - 1 : chunkOffsets.length
    for (let c = first; c < nextFirst && s < n; c++) {
      const co = chunkOffsets[c]
      if (co === undefined) throw new Mp4Error(`track ${id}: stsc refers to missing chunk ${c + 1}`)
      let off = co
      for (let k = 0; k < perChunk && s < n; k++, s++) {
        samples[s] = { dts: 0, pts: 0, duration: 0, size: sizes[s]!, offset: off, isSync: stss === undefined }
        off += sizes[s]!
      }
    }
  }
  if (s !== n) throw new Mp4Error(`track ${id}: chunk table covers ${s} of ${n} samples`)
  // Decode times.
  let t = 0
  s = 0
  const sttsCount = stts.readUInt32BE(4)
  for (let e = 0; e < sttsCount && s < n; e++) {
    const count = stts.readUInt32BE(8 + e * 8)
    const delta = stts.readUInt32BE(12 + e * 8)
    for (let k = 0; k < count && s < n; k++, s++) {
      const smp = samples[s]!
      smp.dts = t - mediaTime
      smp.pts = smp.dts
      smp.duration = delta
      t += delta
    }
  }
  if (s !== n) throw new Mp4Error(`track ${id}: stts covers ${s} of ${n} samples`)
  // Composition offsets (version 1 allows negative values).
  if (ctts !== undefined) {
    const v = ctts[0]
    const c = ctts.readUInt32BE(4)
    s = 0
    for (let e = 0; e < c && s < n; e++) {
      const count = ctts.readUInt32BE(8 + e * 8)
      const off = v === 1 ? ctts.readInt32BE(12 + e * 8) : ctts.readUInt32BE(12 + e * 8)
      for (let k = 0; k < count && s < n; k++, s++) samples[s]!.pts = samples[s]!.dts + off
    }
  }
  if (stss !== undefined) {
    const c = stss.readUInt32BE(4)
    for (let i = 0; i < c; i++) {
      const idx = stss.readUInt32BE(8 + i * 4) - 1
      const smp = samples[idx]
      if (smp !== undefined) smp.isSync = true
    }
  }
  return samples
}
