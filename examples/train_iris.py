"""Train a small real model (logistic regression on the iris data set scikit-learn ships) and pickle it."""

import argparse
import pathlib
import pickle

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
parser.add_argument("--out", required=True)
args = parser.parse_args()
X, y = load_iris(return_X_y=True)
model = LogisticRegression(C=args.c, max_iter=500).fit(X, y)
out = pathlib.Path(args.out)
out.parent.mkdir(parents=True, exist_ok=True)
out.write_bytes(pickle.dumps(model))
print(f"trained iris model C={args.c}: training accuracy {model.score(X, y):.3f} -> {out}")
