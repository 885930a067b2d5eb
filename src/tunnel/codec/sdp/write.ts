/**
 * The one SDP writer (RFC 8866): a session description as text, in the order players expect
 * (session lines, session attributes, then each m= section with its rtpmap, fmtp, other attributes
 * and control last). `buildSdp` describes an H.264 + AAC stream with it: the fmtp of RFC 6184 §8.1
 * and the mpeg4-generic AAC-hbr fmtp of RFC 3640 §4.1. Pure.
 */

/** `a=range` of a session: live from now on, or a finite duration in seconds (npt=0-<end>). */
export type SdpRangeOut = { kind: 'now' } | { kind: 'finite', endSec: number } | { kind: 'none' }

export interface SdpMediaOut {
  /** 'video', 'audio', … */
  media: string
  payloadType: number
  /** Encoding name as written in the rtpmap ('H264', 'mpeg4-generic'). */
  encoding: string
  clockRate: number
  /** Encoding parameters of the rtpmap (audio channels). */
  channels?: number
  /** a=fmtp parameters ('' or absent: no fmtp line). */
  fmtp?: string
  /** More attribute lines, without "a=", written after the fmtp. */
  attributes?: string[]
  control: string
}

export interface SdpSessionOut {
  /** o= line: session id and the unicast address (IN IP4). */
  sessionId: string
  address: string
  name: string
  /** More session attribute lines, without "a=", written before the control. */
  attributes?: string[]
  control: string
  range: SdpRangeOut
  broadcast: boolean
  media: SdpMediaOut[]
}

function rangeLine (r: SdpRangeOut): string[] {
  if (r.kind === 'now') return ['a=range:npt=now-']
  if (r.kind === 'finite') return [`a=range:npt=0-${r.endSec.toFixed(3)}`]
  return []
}

function mediaLines (m: SdpMediaOut): string[] {
  const pt = m.payloadType
  const lines = [
    `m=${m.media} 0 RTP/AVP ${pt}`,
    `a=rtpmap:${pt} ${m.encoding}/${m.clockRate}${m.channels === undefined ? '' : `/${m.channels}`}`
  ]
  if (m.fmtp !== undefined && m.fmtp !== '') lines.push(`a=fmtp:${pt} ${m.fmtp}`)
  for (const a of m.attributes ?? []) lines.push(`a=${a}`)
  lines.push(`a=control:${m.control}`)
  return lines
}

export function writeSdp (s: SdpSessionOut): string {
  const lines = [
    'v=0',
    `o=- ${s.sessionId} 1 IN IP4 ${s.address}`,
    `s=${s.name}`,
    'c=IN IP4 0.0.0.0',
    't=0 0',
    ...(s.attributes ?? []).map(a => `a=${a}`),
    `a=control:${s.control}`,
    ...rangeLine(s.range),
    ...(s.broadcast ? ['a=type:broadcast'] : [])
  ]
  for (const m of s.media) lines.push(...mediaLines(m))
  return lines.join('\r\n') + '\r\n'
}

export interface SdpVideo {
  kind: 'video'
  payloadType: number
  control: string
  sps: Buffer
  pps: Buffer[]
  width: number
  height: number
  fps?: number
}

export interface SdpAudio {
  kind: 'audio'
  payloadType: number
  control: string
  sampleRate: number
  channels: number
  asc: Buffer
}

export interface SdpInput {
  name: string
  /** Address for the o= line. */
  origin: string
  sessionId: string
  /** Finite duration in seconds for VOD; undefined for a live channel. */
  durationSec?: number
  tracks: Array<SdpVideo | SdpAudio>
}

/** profile_idc, constraint flags, level_idc: SPS bytes 1..3 as 6 hex digits. */
export function profileLevelId (sps: Buffer): string {
  if (sps.length < 4) throw new RangeError('SPS too short')
  return sps.subarray(1, 4).toString('hex')
}

export function spropParameterSets (sps: Buffer, pps: Buffer[]): string {
  return [sps, ...pps].map((b) => b.toString('base64')).join(',')
}

function videoMedia (t: SdpVideo): SdpMediaOut {
  return {
    media: 'video',
    payloadType: t.payloadType,
    encoding: 'H264',
    clockRate: 90000,
    fmtp: `packetization-mode=1;profile-level-id=${profileLevelId(t.sps)};` +
      `sprop-parameter-sets=${spropParameterSets(t.sps, t.pps)}`,
    attributes: [
      `cliprect:0,0,${t.height},${t.width}`,
      `framesize:${t.payloadType} ${t.width}-${t.height}`,
      ...(t.fps === undefined ? [] : [`framerate:${t.fps}`])
    ],
    control: t.control
  }
}

function audioMedia (t: SdpAudio): SdpMediaOut {
  return {
    media: 'audio',
    payloadType: t.payloadType,
    encoding: 'mpeg4-generic',
    clockRate: t.sampleRate,
    channels: t.channels,
    fmtp: 'streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;' +
      `config=${t.asc.toString('hex')}`,
    control: t.control
  }
}

/** The SDP of an H.264 + AAC stream: VOD with its duration, or live (an open range, broadcast). */
export function buildSdp (s: SdpInput): string {
  const live = s.durationSec === undefined
  return writeSdp({
    sessionId: s.sessionId,
    address: s.origin,
    name: s.name,
    attributes: ['tool:tunnelgate-origin'],
    control: '*',
    range: live ? { kind: 'now' } : { kind: 'finite', endSec: s.durationSec! },
    broadcast: live,
    media: s.tracks.map(t => t.kind === 'video' ? videoMedia(t) : audioMedia(t))
  })
}
