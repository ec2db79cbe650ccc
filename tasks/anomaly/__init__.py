"""Set anomaly detection on images: find the odd image out.

Each example is a set of ``set_size`` images in which all but one share a property and one does
not; the network returns one logit per element and the target is the position of the odd one
(``y``: ``(B, n)`` bool, True at the odd element). The loss is the cross-entropy of the softmax
over the set's real elements; the metrics are ``acc`` (fraction of sets whose highest logit is the
odd one; chance is ``1/n``) and ``auroc`` (element-level AUROC of the softmax probabilities over
all real elements of all sets; chance 0.5).

Sources (``source``, :mod:`.sources`), the property being the class unless said otherwise:

- ``digits`` (default, offline): scikit-learn's handwritten digits, 1797 images of 8x8;
- ``mnist``, ``fashion_mnist`` (1x28x28), ``cifar10`` (3x32x32): torchvision datasets under
  ``root``, fetched with ``download=True``;
- ``celeba``: CelebA faces resized to ``image_size``, the DeepSets protocol: each set draws two
  of the 40 attributes (among the pairs at least 16 images of the split share and some lack); the
  other elements have both, the odd one has neither;
- ``folder``: a ``torchvision.datasets.ImageFolder`` tree ``root/<class>/<image>``, resized to
  ``image_size``.

Images are scaled to ``[0, 1]``. Train, validation and test sets are drawn from disjoint images:
the source's own test split when it has one (else ``test_fraction`` of the images), and
``val_fraction`` of the remaining images for validation, chosen by ``seed`` (:mod:`.pool`). Within
a set the shared-property elements are distinct images when the split holds enough of them, else
drawn with replacement (small splits, large sets). Training batches are drawn fresh from a
generator seeded by ``seed``, the process rank and the epoch (saved in checkpoints); training
images may be shifted by up to ``shift`` pixels (zero fill, :mod:`.augment`). Validation and test
sets are fixed per seed; extra ones at the sizes ``val_sizes`` measure generalisation to set sizes
never trained on (``val/acc@n=64``).

The package, one idea per module: :mod:`.sources` reads the images, :mod:`.pool` holds them and
draws sets, :mod:`.augment` shifts training images, :mod:`.datamodule` is the task.
"""

from .augment import shift_images
from .datamodule import SetAnomalyDataModule
from .pool import ImagePool, SetIndex, split_pools
from .sources import Source, image_shape, load_source

__all__ = [
    "ImagePool",
    "SetAnomalyDataModule",
    "SetIndex",
    "Source",
    "image_shape",
    "load_source",
    "shift_images",
    "split_pools",
]
