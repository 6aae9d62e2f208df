"""Batch inference over dask arrays (placeholder)."""


def predict(net, images, batch_size=256, device=None):
    raise NotImplementedError


def evaluate(net, images, labels, batch_size=256):
    raise NotImplementedError
