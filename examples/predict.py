"""Load a pulled (verified) model and predict one flower."""

import pickle
import sys

with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
print("prediction for [5.1, 3.5, 1.4, 0.2]:", model.predict([[5.1, 3.5, 1.4, 0.2]]).tolist())
