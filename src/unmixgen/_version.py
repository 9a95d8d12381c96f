"""The package version, on the lowest floor so every room can record it without importing the
package root (whose public API reaches every room)."""

__version__ = "0.1.0"
