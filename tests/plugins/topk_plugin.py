"""A user's selector module, loaded with --plugin in the tests: keeps the samples with the lowest ids."""

import torch

import swast


@swast.register_selector("test.lowest_ids")
class LowestIds:
    """Keeps the first `budget` sample ids (a deterministic selector a test can predict)."""

    def select(self, ctx):
        assert ctx.model is not None and ctx.num_classes == 10 and ctx.epoch >= 1
        return torch.arange(ctx.budget), torch.full((ctx.budget,), 2.0)
