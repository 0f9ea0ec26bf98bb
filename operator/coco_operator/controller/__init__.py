"""kopf handlers and the Kubernetes I/O they need."""
