"""Ask a running `mdl serve` for one flower's class over the Open Inference Protocol v2 (standard library only).

    python examples/predict_http.py http://127.0.0.1:8501 [MODEL]
"""

import json
import sys
import urllib.request

url, model = sys.argv[1].rstrip("/"), sys.argv[2] if len(sys.argv) > 2 else "iris"
body = {"inputs": [{"name": "flower", "shape": [1, 4], "datatype": "FP32", "data": [5.9, 3.0, 4.2, 1.5]}]}
req = urllib.request.Request(f"{url}/v2/models/{model}/infer", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    doc = json.load(r)
    print(f"prediction for [5.9, 3.0, 4.2, 1.5]: {doc['outputs'][0]['data']} "
          f"(answered by version {doc['model_version']}, X-Model-Version: {r.headers['X-Model-Version']})")
