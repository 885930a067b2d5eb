/**
 * SDP for a stream (RFC 4566), with the H.264 fmtp of RFC 6184 §8.1 and the mpeg4-generic
 * AAC-hbr fmtp of RFC 3640 §4.1. Pure: the catalog gives codec parameters, this formats them.
 */
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

export function buildSdp (s: SdpInput): string {
  const live = s.durationSec === undefined
  const lines = [
    'v=0',
    `o=- ${s.sessionId} 1 IN IP4 ${s.origin}`,
    `s=${s.name}`,
    'c=IN IP4 0.0.0.0',
    't=0 0',
    'a=tool:tunnelgate-origin',
    'a=control:*',
    live ? 'a=range:npt=now-' : `a=range:npt=0-${s.durationSec!.toFixed(3)}`
  ]
  if (live) lines.push('a=type:broadcast')
  for (const t of s.tracks) {
    if (t.kind === 'video') {
      lines.push(
        `m=video 0 RTP/AVP ${t.payloadType}`,
        `a=rtpmap:${t.payloadType} H264/90000`,
        `a=fmtp:${t.payloadType} packetization-mode=1;profile-level-id=${profileLevelId(t.sps)};sprop-parameter-sets=${spropParameterSets(t.sps, t.pps)}`,
        `a=cliprect:0,0,${t.height},${t.width}`,
        `a=framesize:${t.payloadType} ${t.width}-${t.height}`
      )
      if (t.fps !== undefined) lines.push(`a=framerate:${t.fps}`)
    } else {
      lines.push(
        `m=audio 0 RTP/AVP ${t.payloadType}`,
        `a=rtpmap:${t.payloadType} mpeg4-generic/${t.sampleRate}/${t.channels}`,
        `a=fmtp:${t.payloadType} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=${t.asc.toString('hex')}`
      )
    }
    lines.push(`a=control:${t.control}`)
  }
  return lines.join('\r\n') + '\r\n'
}
