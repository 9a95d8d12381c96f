"""LEARN PRIORS and SYNTHESIZE: diffusion models of abundance maps (2D) and spectra (1D)."""
