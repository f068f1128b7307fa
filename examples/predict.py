"""Load a pulled (verified) model and predict one flower: skops, ONNX or pickle, by the file's suffix.

skops builds only the types it trusts (and says which it does not); ONNX is data for onnxruntime;
pickle runs code from the file, so only unpickle what you trust.
"""

import sys

path = sys.argv[1]
row = [[5.1, 3.5, 1.4, 0.2]]
if path.endswith(".skops"):
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    if untrusted:
        sys.exit(f"refusing {path}: it holds types that are not trusted: {', '.join(untrusted)}")
    prediction = skops.io.load(path).predict(row).tolist()
elif path.endswith(".onnx"):
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.asarray(row, dtype=np.float32)}
    prediction = session.run(None, feed)[0].tolist()
else:
    import pickle

    with open(path, "rb") as f:
        prediction = pickle.load(f).predict(row).tolist()
print("prediction for [5.1, 3.5, 1.4, 0.2]:", prediction)
