"""Semi-blind unmixing with the HybridSTU CNN: network, training pairs and their maps' smoothing, loss, estimator."""

from .estimator import HybridSTU

__all__ = ["HybridSTU"]
