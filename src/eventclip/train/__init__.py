"""eventclip.train: the paper's losses, paired datasets, the synthetic benchmark, the trainer and the ablation.

Modules: ``losses`` (L_ct, L_kl, L_zs, L_pred), ``synth`` (the saccade benchmark), ``data`` (paired
datasets and loaders), ``augment`` (the authors' augmentations), ``trainer`` (two-stage training,
DDP, checkpoints, model package), ``ablation`` (Fig. 4 protocol), ``recipes/`` (training recipes as
YAML data). See docs/training.md.
"""
