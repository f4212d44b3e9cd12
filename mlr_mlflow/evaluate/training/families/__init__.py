"""Model families beyond the MLP (which is `evaluate.training.model.Group`), each batched on a model axis.

A family is a `StackedGroup` subclass: its parameters stacked per model, its forward pass over
[models, batch, ...], its activation slots and the weight matrices its regularizer sees.
"""
from __future__ import annotations

from .attention import AttentionGroup
from .cnn import CNNGroup

FAMILIES = {"cnn": CNNGroup, "attention": AttentionGroup}
