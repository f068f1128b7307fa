"""mdl: immutable model versions, pointers that move atomically, replicas that follow them."""

__version__ = "0.1.0"
