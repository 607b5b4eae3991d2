"""The cluster: API access, version, namespace, ingress, cert-manager, pull Secrets, GPU nodes."""
