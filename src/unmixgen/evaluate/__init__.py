"""EVALUATE: pure functions over arrays: unmixing metrics, realism distances, baselines."""
