"""`sense-preflight serve`: the checks on a schedule, exported to Prometheus.

durations (the --interval/--timeout/--listen syntax) → exporter (values, runs, state, log) →
schedule (one run at a time) → metrics (state → Prometheus families) → http (the endpoints).
"""
