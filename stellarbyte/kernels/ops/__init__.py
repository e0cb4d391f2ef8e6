"""Triton kernels, one module per op: the @triton.jit kernel(s), the launcher and the autograd.Function together.

These modules import triton at the top; nothing imports them until the registry picks the Triton backend.
"""
