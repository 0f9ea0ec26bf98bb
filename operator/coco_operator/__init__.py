"""coco-operator: Coco-style connectors as Kubernetes resources."""

__version__ = "0.1.0"
