"""ByteModel.forward(logits_to_keep=index tensor): logits only at the given positions, equal to a full forward's."""

import pytest
import torch
from tiny_models import tiny_model


def test_index_tensor_selects_positions():
    model = tiny_model().double()
    ids = torch.randint(0, 128, (1, 11), generator=torch.Generator().manual_seed(0))
    full = model(ids).logits  # (1, 11, V)
    keep = torch.tensor([0, 4, 10])
    out = model(ids, logits_to_keep=keep).logits
    assert out.shape == (1, 3, 128)
    torch.testing.assert_close(out, full[:, keep], rtol=0, atol=1e-12)  # matmul blocking may differ
    torch.testing.assert_close(model(ids, logits_to_keep=2).logits, full[:, -2:], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(ids, labels=ids, logits_to_keep=keep)
