"""A readable decision tree that mimics the MLP's decisions.

The tree is trained on the MLP's approve/decline decisions (not on the true
labels), so its rules describe how the model decides; fidelity says how far
those rules can be trusted. Rules and paths are written with the schema's
human labels so a compliance officer can read them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from . import schema as S

DECISIONS = ("approve", "decline")


def _condition(name: str, threshold: float, left: bool) -> str:
    """One split in plain words; categorical thresholds become code ranges."""
    f = S.BY_NAME[name]
    if f.kind == "repayment_status":
        cut = int(np.floor(threshold))
        if left:
            return f"{f.label} is at most '{S.PAY_STATUS_MEANINGS[cut]}'" if cut in S.PAY_STATUS_MEANINGS else f"{f.label} <= {threshold:g}"
        nxt = cut + 1
        return f"{f.label} is '{S.PAY_STATUS_MEANINGS.get(nxt, nxt)}' or worse"
    if f.kind == "category":
        codes = [c for c in sorted(f.allowed_codes) if (c <= threshold) == left]
        return f"{f.label} is " + " or ".join(f.allowed_codes[c] for c in codes)
    shown = f.describe(threshold)
    return f"{f.label} {'<=' if left else '>'} {shown}"


class Surrogate(BaseEstimator):
    """Decision tree on the MLP's decisions; `fidelity` is agreement on held-out data."""

    def __init__(self, features: tuple[str, ...] = S.DEFAULT_MODEL_FEATURES, max_depth: int = 4,
                 min_samples_leaf: int = 50, seed: int = 0) -> None:
        self.features = tuple(features)
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.seed = seed

    def fit(self, frame: pd.DataFrame, decisions: np.ndarray) -> Surrogate:
        """`decisions`: the MLP's 0 (approve) / 1 (decline) for the same rows."""
        # Balanced weights: declines are the minority, and the rules that lead to
        # a decline are the ones a reader needs to see.
        self.tree_ = DecisionTreeClassifier(
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf, random_state=self.seed
        ).fit(frame[list(self.features)].to_numpy(np.float64), np.asarray(decisions))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "tree_")
        return self.tree_.predict(frame[list(self.features)].to_numpy(np.float64)).astype(np.int64)

    def fidelity(self, frame: pd.DataFrame, decisions: np.ndarray) -> float:
        """Share of rows where the tree and the MLP take the same decision."""
        return float(np.mean(self.predict(frame) == np.asarray(decisions)))

    def rules(self) -> list[dict]:
        """Every leaf as a rule: its conditions in plain words, decision, support and purity."""
        check_is_fitted(self, "tree_")
        t = self.tree_.tree_
        out: list[dict] = []

        def walk(node: int, conds: list[str]) -> None:
            if t.children_left[node] == t.children_right[node]:
                counts = t.value[node][0]
                k = int(np.argmax(counts))
                out.append({
                    "conditions": conds,
                    "decision": DECISIONS[int(self.tree_.classes_[k])],
                    "samples": int(t.n_node_samples[node]),
                    "purity": float(counts[k] / counts.sum()),
                    "text": "IF " + " AND ".join(conds or ["always"]) + f" THEN {DECISIONS[int(self.tree_.classes_[k])]}",
                })
                return
            name, thr = self.features[t.feature[node]], float(t.threshold[node])
            walk(t.children_left[node], [*conds, _condition(name, thr, True)])
            walk(t.children_right[node], [*conds, _condition(name, thr, False)])

        walk(0, [])
        return out

    def rules_text(self) -> str:
        return "\n".join(r["text"] for r in self.rules())

    def decision_path(self, row: pd.DataFrame) -> list[dict]:
        """The splits one applicant passes through, with their own value at each."""
        check_is_fitted(self, "tree_")
        x = row[list(self.features)].to_numpy(np.float64)[:1]
        t = self.tree_.tree_
        nodes = self.tree_.decision_path(x).indices
        steps = []
        for node in nodes[:-1]:
            name, thr = self.features[t.feature[node]], float(t.threshold[node])
            value = float(x[0, t.feature[node]])
            steps.append({
                "feature": name,
                "value": value,
                "condition": _condition(name, thr, value <= thr),
                "value_text": S.BY_NAME[name].describe(value),
            })
        return steps
