"""Agency adapters (signed webhooks, file drop, the results endpoint) and simulated agencies.

``arrears adapter --agency ID`` runs :class:`consumers.adapter.Adapter`; the simulated
agencies of the demo and the tests live in :mod:`consumers.simagency`.
"""
