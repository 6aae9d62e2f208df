"""Images for the book's chapters, under torchvision's names: ``corrnet.vision`` plays
``torchvision``'s part.

    from corrnet.vision import datasets, transforms
    trans = transforms.Compose([transforms.Resize(96), transforms.ToTensor()])
    train = datasets.FashionMNIST(root="../data", train=True, transform=trans, download=True)
"""

from . import datasets, transforms

__all__ = ["datasets", "transforms"]
