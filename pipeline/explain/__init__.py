"""Explanations of the credit model (placeholder; the package entry is written by the explanations integrator)."""
