"""What ``--model`` accepts, said once for every subcommand that takes it."""

from __future__ import annotations

MODEL_HELP = "a model package folder, `default` (the bundled model) or a pulled name (`eventclip models list`)"
