"""Figures drawn from the cached analysis tables: passk, dynamics, sweep (one module each)."""
