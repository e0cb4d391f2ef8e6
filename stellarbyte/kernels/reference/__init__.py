"""Torch references: the numerics the model uses, one module per op family, same signatures as the kernels."""
