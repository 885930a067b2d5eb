#!/usr/bin/env bash
# make-demo.sh — regenerate media/demo.mp4, the embedded origin's demo clip (see media/README.md).
# 12 s of ffmpeg's lavfi testsrc2 + a 440 Hz sine: H.264 main profile, no B-frames, 1 s GOP (25 frames),
# 640x360 @ 25 fps, ~500 kbit/s, plus AAC-LC 48 kHz stereo 64 kbit/s, MP4 with the moov box first.
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25:duration=12" \
  -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=12" \
  -map 0:v -map 1:a \
  -c:v libx264 -preset medium -profile:v main -pix_fmt yuv420p -bf 0 \
  -b:v 500k -maxrate 500k -bufsize 1000k \
  -x264-params "keyint=25:min-keyint=25:scenecut=0" \
  -c:a aac -b:a 64k -ac 2 -ar 48000 \
  -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -movflags +faststart demo.mp4
ls -l demo.mp4
