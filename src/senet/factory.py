"""``senet.create_model``: build a registered model and, when asked, load published weights into it.

This sits above both :mod:`senet.models` (the registry, which only builds) and :mod:`senet.weights` (which imports
the models to infer architectures from checkpoints), so neither package imports the other in a circle.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from senet import models, weights

__all__ = ["create_model"]


def create_model(
    name: str,
    num_classes: int | None = None,
    pretrained: str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, then load ``pretrained`` weights into it if given.

    Args:
        name: a name from :func:`senet.list_models`.
        num_classes: classifier outputs; ``None`` keeps the model's default (1000 for ImageNet nets, 10 for the
            CIFAR nets); 0 builds the model without a classifier (``forward`` returns pooled features).
        pretrained: weights to load (a file or URL understood by :func:`senet.weights.load_pretrained`). Their
            classifier must have the model's ``num_classes`` unless ``num_classes`` is given: then a classifier of
            another size is replaced by a zero-initialised one (fine-tuning) and everything else loads strictly.
        **overrides: constructor arguments of the model (``attn_layer``, ``attn_position``, ``drop_rate``, ...).
            ``None`` values are dropped, so unset CLI flags never override a model default (to remove a model's
            attention pass ``attn_layer="none"``, not ``None``).

    Raises:
        SenetError: unknown model name, an option the model does not take, or weights that do not fit.

    >>> m = create_model("se_resnet20", num_classes=100, attn_position="pre")
    >>> m.num_classes, m.model_name
    (100, 'se_resnet20')
    """
    model = models.create_model(name, num_classes=num_classes, **overrides)
    if pretrained:
        # Looked up on the package at call time, so a patched ``senet.weights.load_pretrained`` is the one called.
        if num_classes is None:
            weights.load_pretrained(model, pretrained)
        else:
            # Only an explicit num_classes may drop the file's classifier: a default-built model must not
            # silently swap it for a random one.
            weights.load_pretrained(model, pretrained, replace_head=True)
    return model
