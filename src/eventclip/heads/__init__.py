"""Heads: embeddings (B, D) -> labels and anomaly scores. numpy only, so the daemon runs without torch.

One module per head, each registered in :data:`eventclip.heads.base.HEADS`: :mod:`~eventclip.heads.zero_shot`,
:mod:`~eventclip.heads.probe`, :mod:`~eventclip.heads.tip`, :mod:`~eventclip.heads.prompt_anomaly`,
:mod:`~eventclip.heads.reference_anomaly`; :mod:`~eventclip.heads.smoothing` (EMA of the anomaly score),
:mod:`~eventclip.heads.prompts` (the prompt file and its text embeddings),
:mod:`~eventclip.heads.classifier` (window -> Result: frames, encoder, heads) and
:mod:`~eventclip.heads.saved` (heads stored in a model package).

* :class:`ZeroShotHead`: cosine × logit multiplier -> softmax over classes -> top-k.
* :class:`LinearProbe`: softmax regression fitted on k labelled support windows per class.
* :class:`TipAdapter`: training-free cache (Zhang et al., Tip-Adapter): keys = support embeddings,
  affinity exp(-β(1 - cos)), class votes blended with the zero-shot logits by α.
* :class:`PromptAnomaly`: probability mass on "abnormal" descriptions vs "normal" ones, in [0, 1].
* :class:`ReferenceAnomaly`: kNN cosine distance to a bank of normal embeddings, mapped to [0, 1]
  so that the chosen quantile of normal windows scores exactly 0.5: score = d / (d + d_q).
* :class:`Ema`: temporal smoothing of a score stream.

Embeddings passed in need not be normalised; every head normalises them itself.
"""
