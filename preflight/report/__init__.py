"""The report: results, redaction, the renderers and the support bundle."""
