#!/usr/bin/env bash
# HAProxy in front of three `mdl serve` replicas on this machine, configured only by
# `mdl endpoints --watch`, on the embedded default (run from the repository after scripts/quickstart-serve;
# needs haproxy: apt-get install haproxy). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$work"' EXIT
python ../../train_iris.py --out "$work/v1/model.pkl" >/dev/null
mdl push iris "$work/v1/model.pkl" --promote -q >/dev/null
for port in 8501 8502 8503; do mdl serve iris --port "$port" --cache "$work/cache-$port" 2>>"$work/serve.log" & done
until [ "$(mdl endpoints iris 2>/dev/null | wc -l)" = 3 ]; do sleep 0.5; done
mdl endpoints iris -o haproxy --out "$work/backend.cfg"
sed "s/log .*//; s/option httplog//; s/mdl_lr/mdl_iris/" haproxy.cfg > "$work/haproxy.cfg"
haproxy -W -db -f "$work/haproxy.cfg" -f "$work/backend.cfg" 2>>"$work/haproxy.log" &
haproxy_pid=$!
mdl endpoints iris -o haproxy --watch --out "$work/backend.cfg" --exec "kill -USR2 $haproxy_pid" &
sleep 1
for _ in 1 2 3; do
  curl -s -D - -o /dev/null localhost:8080/v2/models/iris/infer \
    -d '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}' | grep -i x-served-by
done
echo "HAProxy on :8080 in front of 3 replicas; start a 4th (mdl serve iris --port 8504) or stop one and watch $work/backend.cfg"
wait
