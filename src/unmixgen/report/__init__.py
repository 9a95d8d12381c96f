"""Figures (PNG) and HTML reports."""
