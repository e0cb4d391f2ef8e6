"""The kernel registry: which implementation (torch reference or Triton) runs each op.

Contract
  * Every op has a torch reference; most have a Triton version. Both take the same arguments.
  * The backend is chosen per call: the `backend=` keyword, else a per-op choice made with
    `use_backend(name, ops=[...])`, else the process default set by `set_backend()` / `use_backend()`, else the
    env var STELLARBYTE_KERNELS (torch | triton | auto), else "auto".
  * "auto" asks the op's policy: by default Triton when a tensor argument lives on CUDA and Triton imports,
    torch otherwise (so CPU tests and laptops never touch Triton). An op may override the policy: matmul's
    auto stays on cuBLAS, which beats the teaching Triton matmul on the sizes we measured. An op may also have
    another policy while torch.compile traces it (`auto_when_compiling`): inductor fuses the torch reference
    with its neighbours, which beat our opaque Triton kernels in whole training steps (docs/training_performance.md).
  * "triton" on CPU tensors only works under Triton's interpreter (TRITON_INTERPRET=1 set before the kernel
    modules are imported); otherwise a ValueError says so.
  * Implementations are imported lazily ("module:function" strings), so `import stellarbyte` and the torch
    backend never import Triton.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

BACKENDS = ("torch", "triton", "auto")
ENV_VAR = "STELLARBYTE_KERNELS"

_override: str | None = None  # set_backend() wins over the env var
_op_override: dict[str, str] = {}  # use_backend(name, ops=...) wins over both, for the ops it names


@dataclass(slots=True)
class OpEntry:
    """Where an op's implementations live and how "auto" chooses between them."""

    name: str
    torch_impl: str  # "module:function"
    triton_impl: str | None = None
    auto_prefers_triton: bool = True  # False: auto keeps torch even on CUDA (the Triton version does not win)
    auto_when_compiling: bool | None = None  # the same choice under torch.compile; None: as auto_prefers_triton
    _cache: dict[str, Callable] = field(default_factory=dict)

    def load(self, backend: str) -> Callable:
        if backend not in self._cache:
            target = self.torch_impl if backend == "torch" else self.triton_impl
            if target is None:
                raise ValueError(f"op {self.name!r} has no {backend} implementation; use backend='torch'")
            module_name, fn_name = target.split(":")
            self._cache[backend] = getattr(importlib.import_module(module_name), fn_name)
        return self._cache[backend]


_OPS: dict[str, OpEntry] = {}


def register(name: str, torch_impl: str, triton_impl: str | None = None, auto_prefers_triton: bool = True,
             auto_when_compiling: bool | None = None) -> None:
    _OPS[name] = OpEntry(name, torch_impl, triton_impl, auto_prefers_triton, auto_when_compiling)


def registered_ops() -> list[str]:
    return sorted(_OPS)


def _check(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; choose one of {', '.join(BACKENDS)} "
                         f"(argument backend=, set_backend() or env {ENV_VAR})")
    return name


def get_backend() -> str:
    """The process default: set_backend() if called, else $STELLARBYTE_KERNELS, else "auto"."""
    if _override is not None:
        return _override
    return _check(os.environ.get(ENV_VAR, "auto").strip().lower() or "auto")


def set_backend(name: str | None) -> None:
    """Set the process default backend; None goes back to the env var."""
    global _override
    _override = None if name is None else _check(name)


@contextlib.contextmanager
def use_backend(name: str, ops: Iterable[str] | None = None) -> Iterator[None]:
    """`with use_backend("triton"): ...` -- the default backend inside the block. With `ops`, only those ops
    switch (e.g. `use_backend("triton", ops=["fused_linear_cross_entropy"])`); the others keep their choice."""
    global _override, _op_override
    _check(name)
    previous, previous_ops = _override, dict(_op_override)
    if ops is None:
        _override = name
    else:
        unknown = sorted(set(ops) - set(_OPS))
        if unknown:
            raise ValueError(f"use_backend: unknown op(s) {unknown}; registered ops are {registered_ops()}")
        _op_override = {**_op_override, **{op: name for op in ops}}
    try:
        yield
    finally:
        _override, _op_override = previous, previous_ops


_TRITON_OK: bool | None = None


def _constant_for_compile(fn: Callable) -> Callable:
    """What torch.compiler.assume_constant_result does (torch.compile calls `fn` at trace time and uses its result
    as a constant: importlib cannot be traced), without importing torch._dynamo, which imports Triton -- `import
    stellarbyte` and the torch backend must not."""
    fn._dynamo_marked_constant = True  # the attribute torch._dynamo.assume_constant_result sets
    return fn


@_constant_for_compile
def triton_available() -> bool:
    """True when `import triton` works (it is an optional extra: pip install stellarbyte[kernels])."""
    global _TRITON_OK
    if _TRITON_OK is None:
        try:
            importlib.import_module("triton")
            _TRITON_OK = True
        except ImportError:
            _TRITON_OK = False
    return _TRITON_OK


def resolve(name: str, backend: str | None, *tensors: torch.Tensor | None) -> str:
    """The concrete backend ("torch" or "triton") that runs op `name` on these tensors."""
    entry = _OPS[name]
    chosen = _check(backend) if backend is not None else _op_override.get(name) or get_backend()
    if chosen == "auto":
        on_cuda = any(t is not None and t.is_cuda for t in tensors)
        prefers = entry.auto_prefers_triton
        if entry.auto_when_compiling is not None and torch.compiler.is_compiling():
            prefers = entry.auto_when_compiling
        use_triton = on_cuda and prefers and entry.triton_impl is not None and triton_available()
        return "triton" if use_triton else "torch"
    if chosen == "triton" and not triton_available():
        raise ValueError("backend 'triton' needs the triton package: pip install 'stellarbyte[kernels]' "
                         "(or choose backend='torch')")
    return chosen


@_constant_for_compile  # the lazy import happens at trace time, outside the compiled graph
def _loaded(name: str, backend: str) -> str:
    _OPS[name].load(backend)
    return backend


def dispatch(name: str, backend: str | None, *tensors: torch.Tensor | None) -> Callable:
    """The implementation of op `name` to call for these tensors (importing it on first use, also when
    torch.compile traces the call)."""
    return _OPS[name]._cache[_loaded(name, resolve(name, backend, *tensors))]
