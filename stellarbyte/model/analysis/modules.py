"""The per-module table: the model built on the meta device (free for 70B shapes), parameters and shapes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stellarbyte.config import ByteConfig

# ---- per-module table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleRow:
    """One module: its dotted name, class, depth, parameters it owns directly or below (tied ones count at
    their first appearance, as model.parameters() does), and the shapes of its direct parameters."""

    name: str
    type: str
    depth: int
    params: int
    shapes: str


def module_table(config: ByteConfig, max_depth: int | None = None, collapse_layers: bool = False) -> list[ModuleRow]:
    """A torchinfo-like listing of ByteModel(config), built on the meta device (no memory, no init cost).

    collapse_layers lists block 0 in full and the other (identical) blocks as one summary row.
    """
    from stellarbyte.model.transformer import ByteModel

    with torch.device("meta"):
        model = ByteModel(config)
    owner: dict[int, str] = {}  # id(param) -> first module name owning it
    for module_name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            owner.setdefault(id(param), module_name)
    rows = []
    layers = config.num_hidden_layers
    for name, module in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if max_depth is not None and depth > max_depth:
            continue
        block = name.split(".")[2] if name.startswith("model.layers.") else None  # "3" in model.layers.3.mlp
        if collapse_layers and block is not None and block != "0":
            if name == "model.layers.1":  # one row standing for blocks 1 .. L-1
                per_block = sum(p.numel() for p in module.parameters())
                label = "model.layers.1" if layers == 2 else f"model.layers.1-{layers - 1}"
                rows.append(ModuleRow(label, f"{type(module).__name__} x{layers - 1}",
                                      depth, per_block * (layers - 1), "same as model.layers.0"))
            continue
        prefix = name + "." if name else ""
        count = 0
        for sub_name, sub in module.named_modules():
            full = prefix + sub_name if sub_name else name
            count += sum(p.numel() for p in sub.parameters(recurse=False) if owner[id(p)] == full)
        shapes = []
        for pname, p in module.named_parameters(recurse=False):
            shape = "x".join(str(s) for s in p.shape)
            shapes.append(f"{pname} {shape}" + (f" (tied to {owner[id(p)]})" if owner[id(p)] != name else ""))
        rows.append(ModuleRow(name or "(model)", type(module).__name__, depth, count, ", ".join(shapes)))
    return rows
