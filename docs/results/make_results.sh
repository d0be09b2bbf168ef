#!/usr/bin/env bash
# Regenerates every file in docs/results/ from the synthetic benchmark and the shipped default model.
# Run from the repository root. Needs the benchmark folder and stage-1 checkpoint of the training run that
# made the default model: `eventclip train --recipe default --out $RUN` writes $RUN/data and $RUN/stage1.pt.
set -euo pipefail
MODEL=src/eventclip/data/default_model
# The run folder is the --out of the training command recorded in the model card.
RUN=${RUN:-$(python3 -c "import json, shlex; a = shlex.split(json.load(open('$MODEL/model.json'))['training']['command']); print(a[a.index('--out') + 1])")}
OUT=docs/results
DATA=$RUN/data
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Evaluation. Zero-shot on the 18 classes the model never trained on (all 6 recordings each);
# few-shot (Tip-Adapter) on the same classes; linear probe on all 74 classes (trainer's split).
eventclip eval zero-shot --dataset folder --root $DATA --model $MODEL --subset unseen --split all \
  --out $OUT/eval_zero_shot_unseen
eventclip eval few-shot --dataset folder --root $DATA --model $MODEL --subset unseen --shots 1,2,5 --seeds 3 \
  --out $OUT/eval_few_shot_unseen
eventclip eval linear-probe --dataset folder --root $DATA --model $MODEL --out $OUT/eval_linear_probe_all

# Retrieval. The shipped package leaves out the frozen image tower f_I; event<->image needs it, so a copy
# of the package gets f_I back from the stage-1 checkpoint of the same training run (its text tower and
# logit scale are bit-identical to the package's; the script checks).
RUN=$RUN python3 - <<'PY'
import os
import torch
from eventclip.model.clip import EventClip
m = EventClip.from_pretrained("src/eventclip/data/default_model", with_image_encoder=False)
state = torch.load(os.environ["RUN"] + "/stage1.pt", weights_only=False, map_location="cpu")["model"]
text = {k[len("text_encoder."):]: v for k, v in state.items() if k.startswith("text_encoder.")}
assert all(torch.equal(v, text[k]) for k, v in m.text_encoder.state_dict().items()), "not the same training run"
full = EventClip(m.card, with_image_encoder=True, bpe_path=m.tokenizer_path)
full.event_encoder.load_state_dict(m.event_encoder.state_dict())
full.text_encoder.load_state_dict(m.text_encoder.state_dict())
full.image_encoder.load_state_dict({k[len("image_encoder."):]: v for k, v in state.items()
                                    if k.startswith("image_encoder.")})
full.logit_scale.data.fill_(float(m.logit_scale))
full.save_pretrained(os.environ["RUN"] + "/model_with_image_encoder", include_image_encoder=True)
PY
eventclip retrieve eval --root $DATA --model $RUN/model_with_image_encoder --subset unseen --split all \
  --out $OUT/retrieval_unseen
eventclip retrieve eval --root $DATA --model $RUN/model_with_image_encoder --subset all --split all \
  --out $OUT/retrieval_all

# Attention maps: the window (the card's window_us) holding the middle of five labelled spans of the shipped
# sample recording; the top prompt is explained.
SAMPLE=src/eventclip/data/sample/sample.raw
for spec in 151000:aubergine 453000:chestnut 755000:digit_four 1057000:letter_a 1661000:helicopter; do
  eventclip explain $SAMPLE --model $MODEL --prompts $OUT/benchmark_prompts.yaml --at-us ${spec%%:*} \
    --out $OUT/explain/${spec##*:}.png
done
# The same letter-A window, explained for the true class instead of the top prompt.
eventclip explain $SAMPLE --model $MODEL --prompts $OUT/benchmark_prompts.yaml --at-us 1057000 \
  --target "the letter a" --out $OUT/explain/letter_a_target_truth.png
