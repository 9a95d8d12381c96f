"""The 1D diffusion prior over endmember spectra (`unmixgen train-spectra`)."""
