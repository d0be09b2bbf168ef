"""eventclip.train: the paper's losses, the synthetic benchmark, the trainer and the ablation.

Modules: ``losses`` (L_ct, L_kl, L_zs, L_pred), ``synth`` (the saccade benchmark), ``recipe`` (the
recipe schema and LR schedule; ``recipes/`` holds recipes as YAML data), ``distributed`` (DDP under
torchrun), ``loops`` (the two stages, checkpoints, metrics), ``trainer`` (a recipe -> a model package:
data, split, both stages, the card), ``ablation`` (Fig. 4 protocol). The datasets it reads, their
augmentations and batching live in :mod:`eventclip.datasets`, shared with evaluation. See
docs/training.md.
"""
