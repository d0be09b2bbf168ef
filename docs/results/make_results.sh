#!/usr/bin/env bash
# Regenerates every file in docs/results/ from the synthetic benchmark and the shipped default model, and the
# same evaluations for the untrained baseline (f_E = f_I, the model before stage 2) beside it.
# Run from the repository root. Needs the training run that made the default model: its dataset (the card's
# training.split.dataset) and its stage-1 checkpoint (<run>/stage1.pt, the run being the card's --out).
set -euo pipefail
MODEL=src/eventclip/data/default_model
CARD=$MODEL/model.json
RUN=${RUN:-$(python3 -c "import json, shlex; a = shlex.split(json.load(open('$CARD'))['training']['command']); print(a[a.index('--out') + 1])")}
DATA=${DATA:-$(python3 -c "import json; print(json.load(open('$CARD'))['training']['split']['dataset'])")}
OUT=docs/results
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Two more packages from the same training run (their text tower and logit scale are bit-identical to the
# shipped package's; the script checks): with the frozen image tower f_I (event <-> image retrieval needs it),
# and the untrained baseline whose event encoder is still the copy of f_I.
RUN=$RUN python3 - <<'PY'
import os
import torch
from eventclip.model.clip import EventClip
m = EventClip.from_pretrained("src/eventclip/data/default_model", with_image_encoder=False)
state = torch.load(os.environ["RUN"] + "/stage1.pt", weights_only=True, map_location="cpu")["model"]
part = lambda prefix: {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
assert all(torch.equal(v, part("text_encoder.")[k]) for k, v in m.text_encoder.state_dict().items()), "not the same run"
for name, event_encoder in (("model_with_image_encoder", m.event_encoder.state_dict()),
                            ("untrained_baseline", part("image_encoder."))):
    full = EventClip(m.card, with_image_encoder=True, bpe_path=m.tokenizer_path)
    full.event_encoder.load_state_dict(event_encoder)
    full.text_encoder.load_state_dict(m.text_encoder.state_dict())
    full.image_encoder.load_state_dict(part("image_encoder."))
    full.logit_scale.data.fill_(float(m.logit_scale))
    full.save_pretrained(os.environ["RUN"] + "/" + name, include_image_encoder=True)
PY

# Evaluation, with the held-out recordings the card lists (none of them trained on). Zero-shot on the 18 classes
# f_E never trained on (all their recordings); few-shot (Tip-Adapter) on the same classes; linear probe on all
# 74 classes. Each for the shipped model and for the untrained baseline.
for who in shipped untrained; do
  if [ $who = shipped ]; then PKG=$MODEL; SUFFIX=""; else PKG=$RUN/untrained_baseline; SUFFIX="_untrained"; fi
  eventclip eval zero-shot --dataset folder --root "$DATA" --model $PKG --subset unseen --split all \
    --out $OUT/eval_zero_shot_unseen$SUFFIX
  eventclip eval few-shot --dataset folder --root "$DATA" --model $PKG --subset unseen --shots 1,2,5 --seeds 3 \
    --out $OUT/eval_few_shot_unseen$SUFFIX
  eventclip eval linear-probe --dataset folder --root "$DATA" --model $PKG --out $OUT/eval_linear_probe_all$SUFFIX
done

# Retrieval: unseen classes (never trained on), and all classes (which include the recordings f_E trained on).
for who in model_with_image_encoder untrained_baseline; do
  SUFFIX=$([ $who = untrained_baseline ] && echo "_untrained" || echo "")
  eventclip retrieve eval --root "$DATA" --model $RUN/$who --subset unseen --split all --out $OUT/retrieval_unseen$SUFFIX
  eventclip retrieve eval --root "$DATA" --model $RUN/$who --subset all --split all --out $OUT/retrieval_all$SUFFIX
done

# Attention maps: the window (the card's window_us) holding the middle of five labelled spans of the shipped
# sample recording; the top prompt is explained, and once the true class.
SAMPLE=src/eventclip/data/sample/sample.raw
rm -f $OUT/explain/*.png
python3 - <<'PY' > /tmp/eventclip_explain_spans
import json
segments = json.load(open("src/eventclip/data/sample/sample.json"))["segments"]
for s in segments[:5]:
    print((s["t_start_us"] + s["t_end_us"]) // 2, s["text"].replace("the handwritten ", "").replace(" ", "_"))
PY
while read -r at name; do
  eventclip explain $SAMPLE --model $MODEL --prompts $OUT/benchmark_prompts.yaml --at-us "$at" --out "$OUT/explain/$name.png"
done < /tmp/eventclip_explain_spans
read -r at name < /tmp/eventclip_explain_spans
truth=$(python3 -c "import json; print(json.load(open('src/eventclip/data/sample/sample.json'))['segments'][0]['text'])")
eventclip explain $SAMPLE --model $MODEL --prompts $OUT/benchmark_prompts.yaml --at-us "$at" --target "$truth" \
  --out "$OUT/explain/${name}_target_truth.png"
