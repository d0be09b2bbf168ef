"""eventclip.train: the paper's losses, the synthetic benchmark, the trainer and the ablation.

Modules: ``losses`` (L_ct, L_kl, L_zs, L_pred), ``synth`` (the saccade benchmark), ``trainer``
(two-stage training, DDP, checkpoints, model package), ``ablation`` (Fig. 4 protocol), ``recipes/``
(training recipes as YAML data). The datasets it reads, their augmentations and batching live in
:mod:`eventclip.datasets`, shared with evaluation. See docs/training.md.
"""
