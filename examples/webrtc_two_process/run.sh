#!/usr/bin/env bash
# Receiver and sender as two processes over WebRTC; prints both logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
HF=".venv/bin/python -m hfstream"
$HF recv --rtc --listen 127.0.0.1:9999 --frames "${FRAMES:-30}" --out out/rtc --timeout 20 &
RECV=$!
sleep 3
$HF send pattern --frames "${FRAMES:-30}" --fps 10 --rtc --to 127.0.0.1:9999
wait $RECV
