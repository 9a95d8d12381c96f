"""SIMULATE, the forward model: mixing, spectral response, random fields, procedural
spectra and maps, and scene simulation with exact ground truth."""
