"""Train a small real model (logistic regression on the iris data set scikit-learn ships) and save it.

The format follows --out's suffix (or --format): .skops and .onnx load in `mdl serve` without running
code from the file; .pkl (pickle) runs code as it loads, so serve.pickle can refuse it.

    python examples/train_iris.py --out /tmp/iris/v1/model.skops
    python examples/train_iris.py --c 0.01 --out /tmp/iris/v2/model.onnx
"""

import argparse
import pathlib
import pickle

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

FORMATS = {".skops": "skops", ".onnx": "onnx", ".pkl": "pickle", ".pickle": "pickle"}

parser = argparse.ArgumentParser()
parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
parser.add_argument("--out", required=True, help="file to write (its suffix picks the format)")
parser.add_argument("--format", choices=sorted(set(FORMATS.values())), help="default: by --out's suffix")
args = parser.parse_args()
out = pathlib.Path(args.out)
fmt = args.format or FORMATS.get(out.suffix.lower())
if fmt is None:
    parser.error(f"cannot tell the format from {out.name!r}: use .skops, .onnx or .pkl, or --format")
X, y = load_iris(return_X_y=True)
model = LogisticRegression(C=args.c, max_iter=500).fit(X, y)
out.parent.mkdir(parents=True, exist_ok=True)
if fmt == "skops":
    import skops.io

    skops.io.dump(model, out)
elif fmt == "onnx":
    from skl2onnx import to_onnx

    # zipmap off: the probabilities come out as a tensor (FP32 [rows, 3]), which any client can read
    graph = to_onnx(model, X[:1].astype("float32"), options={"zipmap": False})
    out.write_bytes(graph.SerializeToString())
else:
    out.write_bytes(pickle.dumps(model))
print(f"trained iris model C={args.c}: training accuracy {model.score(X, y):.3f} -> {out} ({fmt})")
