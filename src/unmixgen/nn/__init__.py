"""Torch infrastructure shared by every network: devices, checkpoints, the trainer."""
