"""Semi-blind unmixing with the HybridSTU CNN: network, training pairs, loss, estimator."""

from .estimator import HybridSTU

__all__ = ["HybridSTU"]
