"""Event datasets as their authors distribute them: one file per dataset, shared by training and evaluation.

Evaluation reads :class:`~eventclip.datasets.base.EvalDataset` (:func:`load_dataset` by name): class
names, the texts the text tower reads, and ``train`` / ``test`` lists of
:class:`~eventclip.datasets.base.Sample` (a file, a label and, for DVS128 Gesture, the time span of
the gesture inside the file). Training reads :class:`~eventclip.datasets.base.PairedDataset` (event
files paired with images: :func:`~eventclip.datasets.folder.load_folder`,
:func:`~eventclip.datasets.ncaltech101.load_ncaltech101_pairs`,
:func:`~eventclip.datasets.nimagenet.load_nimagenet_pairs`). Events are decoded only when a sample
is used (:mod:`eventclip.datasets.reading`, :class:`~eventclip.datasets.cache.EventCache`), through
:mod:`eventclip.io`, so every format check of the readers applies.

Layouts (``ROOT`` is what the user passes as ``--root``):

* ``ncaltech101``: ``ROOT[/Caltech101]/<class>/image_0001.bin`` (Orchard et al. 2015). No official
  split: a per-class shuffle with seed 0 puts 20 % of each class in ``test``. ``BACKGROUND_Google``
  is not an object class and is left out (the usual 101 classes).
* ``nmnist``: ``ROOT/Train/<digit>/*.bin`` and ``ROOT/Test/<digit>/*.bin``: the official split.
* ``nimagenet``: ``ROOT/extracted_train/<wnid>/*.npz`` and ``ROOT/extracted_val/<wnid>/*.npz``
  (Kim et al. 2021); when ``ROOT/train_list.txt`` / ``ROOT/val_list.txt`` exist (the authors'
  file lists, one path per line) they decide the members, matched by their last two path parts
  ``<wnid>/<file>.npz``. Class texts come from ImageNet's ``LOC_synset_mapping.txt`` in ROOT when
  present. Protocol ``paper`` (Jeong et al.): 100 classes drawn with a fixed seed, 20 of them held
  out; zero-shot is scored on the held-out classes' validation samples against those 20 names,
  each sample a random 30,000-event slice (seeded per sample, so results repeat).
* ``cifar10dvs``: ``ROOT[/CIFAR10DVS]/<class>/cifar10_<class>_<n>.aedat`` (Li et al. 2017; jAER
  AEDAT 2.0 from a DVS128), or the ``.aedat4`` re-release tonic downloads. No official split: the
  usual one by number, first 90 % of each class (by ``n``) to ``train``, the last 10 % to ``test``.
* ``asldvs``: ``ROOT/<letter>/<letter>_<n>.mat`` (Bi et al. 2019; MATLAB files with ``x``, ``y``,
  ``ts`` in µs and ``pol``; DAVIS240C, 240x180; y counted from the bottom, flipped to eventclip's
  top-row origin as tonic does). Read with scipy. No official split: per-class
  shuffle with seed 0, 20 % to ``test``.
* ``dvsgesture``: ``ROOT[/DvsGesture]/userNN_<lighting>.aedat`` (AEDAT 3.1) with
  ``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``, classes 1-11) and the
  official ``trials_to_train.txt`` / ``trials_to_test.txt``. Each labelled span is one sample.
* ``folder``: the generic paired layout of :mod:`eventclip.datasets.folder` (what ``eventclip dataset
  synth`` writes): ``classes.json`` + ``index.csv``. Split: the trainer's own (seed 0, one sample
  of each class held out), so seen-class numbers are on samples the model never trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from eventclip.datasets.asldvs import load_asldvs
from eventclip.datasets.base import EvalDataset
from eventclip.datasets.cifar10dvs import load_cifar10dvs
from eventclip.datasets.dvsgesture import load_dvsgesture
from eventclip.datasets.folder import load_folder_dataset
from eventclip.datasets.ncaltech101 import load_ncaltech101
from eventclip.datasets.nimagenet import load_nimagenet
from eventclip.datasets.nmnist import load_nmnist
from eventclip.errors import ConfigError

LOADERS: dict[str, Callable[..., EvalDataset]] = {
    "ncaltech101": load_ncaltech101,
    "nmnist": load_nmnist,
    "nimagenet": load_nimagenet,
    "cifar10dvs": load_cifar10dvs,
    "asldvs": load_asldvs,
    "dvsgesture": load_dvsgesture,
    "folder": load_folder_dataset,
}


def load_dataset(name: str, root: str | Path, *, protocol: str = "standard",
                 held_out_files: Sequence[str] | None = None) -> EvalDataset:
    """The loader for ``name`` applied to ``root``; ``protocol`` only means something for N-ImageNet,
    ``held_out_files`` (the trainer's record in a model card) only for ``folder``."""
    if name not in LOADERS:
        raise ConfigError(f"--dataset {name!r} is unknown; choose one of {', '.join(LOADERS)}")
    if protocol != "standard" and name != "nimagenet":
        raise ConfigError(f"--protocol {protocol!r} exists only for nimagenet")
    if name == "nimagenet":
        ds = LOADERS[name](root, protocol=protocol)
    elif name == "folder":
        ds = load_folder_dataset(root, held_out_files)
    else:
        ds = LOADERS[name](root)
    if not ds.train and not ds.test:
        raise ConfigError(f"{ds.root}: found no samples for {name}; check --root and the layout (docs/evaluation.md)")
    return ds
