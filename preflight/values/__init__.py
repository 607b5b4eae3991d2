"""Values: loading files and --set* exactly as Helm does, the chart's rules, and the values check."""
