"""`berth extender`: Berth's engine behind kube-scheduler's extender webhook.

`wire` holds upstream's types (k8s.io/kube-scheduler/extender/v1) and their exact JSON,
`adapter` runs the verbs on an Engine, `informers` keeps its state current, `server` is the
aiohttp application and the process around it.
"""
