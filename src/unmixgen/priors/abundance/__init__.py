"""The 2D diffusion prior over abundance maps: patches, representation, network, training, sampling."""
