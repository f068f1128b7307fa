"""``mdl serve``: an HTTP inference server that follows a model's alias.

Layers: ``codec`` (Open Inference Protocol v2 and TF Serving REST bodies), ``model`` (loaders, the
served reference and the swap policy), ``engine`` (parse, predict with dynamic batching, encode — on a
worker thread), ``metrics`` (Prometheus), ``app`` (the ASGI app on Starlette), ``runner`` (uvicorn, the
Watcher that registers the replica and calls the swap hook, signals).

The HTTP stack (uvicorn, starlette, orjson, prometheus-client, numpy) is the ``serve`` extra and is
imported only by ``mdl serve``.
"""
