"""A selector shipped by a separate package: installed, it is `swast run --selector example.class_balanced_random`."""

import torch


class ClassBalancedRandom:
    """A random coreset with the same number of samples from every class (the remainder at random)."""

    forward_passes = 0.0  # never runs the model: the FLOPs account charges nothing for selection

    def select(self, ctx):
        labels = ctx.dataset.labels.cpu()
        per_class = ctx.budget // ctx.num_classes
        chosen = []
        for c in range(ctx.num_classes):
            members = torch.nonzero(labels == c).flatten().numpy()
            take = min(per_class, len(members))
            chosen.extend(ctx.rng.choice(members, size=take, replace=False).tolist())
        rest = sorted(set(range(len(labels))) - set(chosen))
        chosen.extend(ctx.rng.choice(rest, size=ctx.budget - len(chosen), replace=False).tolist())
        return torch.tensor(chosen)
