"""Unmixing: rank estimation, endmember extraction, abundance inversion, blind methods."""
