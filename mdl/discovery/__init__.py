"""Discovery: the live ``mdl serve`` replicas of a model as the targets a load balancer or a monitoring
system needs (``targets``: validated from untrusted registry records, never raising), rendered as an
HAProxy backend, an nginx upstream, Prometheus file_sd JSON or a user's Jinja2 template (``render``).
Pure functions over records: reading the registry and rewriting files is the caller's job.
"""
