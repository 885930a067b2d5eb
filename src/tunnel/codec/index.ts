/**
 * The public codec surface, `tunnelgate/codec` in package.json "exports": the pure pieces a program
 * outside the gateway (the benchmark in bench/) needs to speak the tunnel. Named one by one, so
 * what is public is decided here, not by whatever a codec file happens to export.
 */
export { Base64StreamDecoder, type Base64PushResult } from './base64-stream.js'
export { RtspDemuxer, type RtspUnit } from './demux.js'
export { leadingFrames, type InterleavedFrame } from './interleaved.js'
export {
  getHeader, makeResponse, serializeMessage,
  type Header, type RtspMessage, type RtspRequest, type RtspResponse
} from './rtsp-message.js'
export { rewriteRequestUrls, UrlMapper, type UrlMapperOptions } from './url-rewrite.js'
export { buildTunnelGetReply, parseHttpHead, type HttpHead, type HttpHeadResult } from './http-head.js'
