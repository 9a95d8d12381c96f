"""Refinement of an unmixing result by posterior sampling with diffusion priors."""
