"""Inference-time projection fusion for the compiled decode step: linears that read the same input become one GEMM.

Why: at batch 1 a decode step is launch-bound; q/k/v_proj read the same normed hidden state, and so do gate/up_proj,
so 3 + 2 GEMMs per layer can be 1 + 1 (vLLM's QKVParallelLinear / MergedColumnParallelLinear do this with fused
checkpoint weights). Here the model's modules, parameters and checkpoint names are untouched: the fusion is a pass
over the FX graph that torch.compile (dynamo) hands to our backend, before inductor compiles it.
  y_i = x W_i^T + b_i  (i = 1..k, same x)   ->   [y_1 | ... | y_k] = x [W_1; ...; W_k]^T + [b_1 | ... | b_k],
  then split along the last dim (views, no copies).
Contract:
  * fuse_sibling_linears(gm, example_inputs, weights) rewrites every group of >= 2 `F.linear` calls on the same
    input node whose weights (and biases: all or none) are graph inputs of one dtype/device and in_features; the
    concatenated weights are registered on the GraphModule as buffers (inductor lifts them as constants, so a CUDA
    graph sees fixed addresses). `weights` caches them by the source tensors' addresses, so compiling several
    batch sizes builds each fused weight once.
  * Cost: one extra copy of the fused weights (q/k/v + gate/up: about half the model's bytes for Qwen3-0.6B).
  * Numerics: each output column is the same dot product; the GEMM kernel may differ, so bf16 logits can differ in
    the last bits (tests pin float32 equality within 1e-5 and greedy tokens).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable

import torch
from torch import fx


def _linear_parts(node: fx.Node) -> tuple[fx.Node, fx.Node, fx.Node | None] | None:
    """(input, weight, bias) of an F.linear call node, or None."""
    if node.op != "call_function" or node.target is not torch._C._nn.linear:
        return None
    args = list(node.args) + [None] * (3 - len(node.args))
    x, w, b = args[0], node.kwargs.get("weight", args[1]), node.kwargs.get("bias", args[2])
    return x, w, b


def fuse_sibling_linears(gm: fx.GraphModule, example_inputs: list, weights: dict) -> int:
    """Fuse linears sharing an input; returns the number of groups fused."""
    graph = gm.graph
    values = {n: t for n, t in zip((n for n in graph.nodes if n.op == "placeholder"), example_inputs)}
    groups: dict[fx.Node, list[fx.Node]] = defaultdict(list)
    for node in graph.nodes:
        parts = _linear_parts(node)
        if parts is None:
            continue
        x, w, b = parts
        if isinstance(values.get(w), torch.Tensor) and (b is None or isinstance(values.get(b), torch.Tensor)):
            groups[x].append(node)
    fused = 0
    for x, nodes in groups.items():
        ws = [values[_linear_parts(n)[1]] for n in nodes]
        bs = [_linear_parts(n)[2] for n in nodes]
        if (len(nodes) < 2 or len({(w.dtype, w.device, w.dim(), w.shape[-1]) for w in ws}) != 1 or ws[0].dim() != 2
                or len({b is None for b in bs}) != 1):
            continue
        bias_values = None if bs[0] is None else [values[b] for b in bs]
        key = tuple(w.data_ptr() for w in ws)
        if key not in weights:  # (sum out_i, in), built once per group of weights
            with torch.no_grad():
                weights[key] = (torch.cat([w.detach() for w in ws]),
                                None if bias_values is None else torch.cat([b.detach() for b in bias_values]))
        fused_w, fused_b = weights[key]
        name = f"_fused_linear_{fused}"
        gm.register_buffer(f"{name}_weight", fused_w)
        if fused_b is not None:
            gm.register_buffer(f"{name}_bias", fused_b)
        sizes = [w.shape[0] for w in ws]
        with graph.inserting_before(nodes[0]):
            w_node = graph.get_attr(f"{name}_weight")
            b_node = graph.get_attr(f"{name}_bias") if fused_b is not None else None
            out = graph.call_function(torch._C._nn.linear, (x, w_node, b_node))  # (..., sum out_i)
            pieces = graph.call_function(torch.split, (out, sizes, -1))
            items = [graph.call_function(operator.getitem, (pieces, i)) for i in range(len(nodes))]
        for node, item in zip(nodes, items):
            node.replace_all_uses_with(item)
            graph.erase_node(node)
        fused += 1
    if fused:
        graph.lint()
        gm.recompile()
    return fused


def fusing_inductor_backend(weights: dict, report: list | None = None) -> Callable:
    """A torch.compile backend: fuse_sibling_linears, then inductor. `report` collects the groups fused per graph."""

    def backend(gm: fx.GraphModule, example_inputs: list):
        from torch._inductor.compile_fx import compile_fx

        count = fuse_sibling_linears(gm, example_inputs, weights)
        if report is not None:
            report.append(count)
        if count:
            # a fresh GraphModule over the rewritten graph: dynamo's bookkeeping of the original module (which
            # parameter came from which source) does not know the new fused buffers, and aot_autograd would refuse
            gm = fx.GraphModule(gm, gm.graph)
        return compile_fx(gm, example_inputs)

    return backend
