"""The figures every part of the audit must agree on, each defined once, with no heavy imports.

A threshold that is written in two places drifts: the fairness verdict would
read one four-fifths figure while the report printed another, or a notice would
show five reasons where the explanation step ranked four. So every rule figure
that more than one module needs lives here, and the modules that apply a rule
import it. This module imports only the standard library (no torch, pandas or
matplotlib), so that the notice renderer, the review app and the command-line
help can read these figures without loading the model's dependencies
(`tests/test_architecture.py` checks that importing it loads no torch).

Recorded runs carry the figures they used (audit.json `fairness.thresholds`,
`explanations.stability.flag_below`); a report of an old run reads those, not
these defaults.
"""

from __future__ import annotations

import math

# ---- fairness verdicts ---------------------------------------------------------------------------
# Four-fifths (80 %) rule, US EEOC Uniform Guidelines 29 CFR 1607.4(D): each group's
# approval rate over the most favoured group's; below this, adverse impact.
FOUR_FIFTHS = 0.80
# Largest acceptable gap in approval rates between groups (demographic parity difference).
PARITY_GAP_MAX = 0.10
# Largest acceptable gap in TPR or FPR between groups (equalized odds difference).
EQUALIZED_ODDS_GAP_MAX = 0.10
# Confidence level of every bootstrap interval the verdicts read.
CI_LEVEL = 0.95
# A group is judged only with at least MIN_GROUP_SIZE applicants and MIN_OUTCOME_COUNT
# defaulters and non-defaulters (TPR, FPR and AUC need both outcomes); below: "insufficient
# data". With 20 defaulters one applicant moves a group's TPR by 0.05, half the equalized
# odds threshold; with fewer, a single person could decide the verdict, and the percentile
# bootstrap of a rate near 0 or 1 collapses to a point.
MIN_GROUP_SIZE = 30
MIN_OUTCOME_COUNT = math.ceil(2 / EQUALIZED_ODDS_GAP_MAX)
# The verdicts, as written to audit.json and shown in reports (stable strings: never renamed).
PASS, REVIEW, FAIL, INSUFFICIENT = "pass", "review", "fail", "insufficient data"

# ---- explanations and notices ----------------------------------------------------------------------
# Regulation B (12 CFR 1002.9) and the CFPB's guidance: no more than four principal reasons.
MAX_REASONS = 4
# Regulation B's elderly rule (12 CFR 1002.6(b)(2)(ii), "elderly" in 1002.2(o)): where age is a model
# input, no applicant of this age or older may have age counted against them. The audit counts them.
ELDERLY_AGE = 62
# A counterfactual must bring the estimated probability of default at least this far below the
# threshold (the notice states it): 49.9% against a 50.0% threshold is a change of decision that a
# recalibration or a rounding could undo. On the real portfolio two points cost 26 of the 3,117
# counterfactuals found with no margin (found-rate 94.3% instead of 95.1%; README, "Counterfactuals").
COUNTERFACTUAL_MARGIN = 0.02
# The depth-4 surrogate tests mostly repayment statuses, so its path shares about one factor in
# three with SHAP or LIME even when they agree with each other (measured on the real portfolio:
# median 0.44 for declined applicants). Below 0.25 the methods share less than one top factor
# in four on average: that explanation is not one a notice should state without a human look.
STABILITY_FLAG_BELOW = 0.25
# Applicants per explanation task: every runner splits the portfolio the same way, so local and
# distributed runs give identical outputs, and a crashed run resumes at this granularity.
EXPLAIN_CHUNK_ROWS = 5000

# ---- devices ---------------------------------------------------------------------------------------
DEVICE_CHOICES = ("auto", "cpu", "cuda")  # where tensors run; `auto` prefers CUDA (pipeline.device)
SEED_MAX = 2**32 - 1  # scikit-learn and numpy accept seeds up to 2**32 - 1 (pipeline.config, the CLI)

# ---- benchmarks, conclusion and monitoring ---------------------------------------------------------
# Bootstrap replicates of the challenger comparison (ROC AUC intervals and paired differences).
BENCHMARK_BOOTSTRAP = 1000
# Keys of the benchmark models in the record (audit.json `benchmarks`).
PRODUCTION, MAJORITY, LOGISTIC, BOOSTED = "production", "majority", "logistic", "boosted_trees"
# The conclusion on page 1 of the audit report (rules: pipeline.conclusion.RULES).
FIT, FIT_WITH_CONDITIONS, NOT_FIT = "fit for use", "fit with conditions", "not fit"
BLOCKING, CONDITION = "blocking", "condition"
# Largest acceptable expected calibration error of the held-out probabilities: above it, the
# probabilities are off by more than three percentage points on average and may be read only as a
# ranking against the threshold, not as chances of default.
CALIBRATION_ECE_MAX = 0.03

# ---- monitoring (pipeline.monitoring, pipeline.drift) ----------------------------------------------
# Conventional reading of the population stability index in credit scoring: below 0.10 stable,
# 0.10-0.25 a moderate shift to watch, 0.25 or more a significant shift that calls for re-validation.
PSI_STABLE = 0.10
PSI_SHIFT = 0.25
# Re-validate when a later labelled run's held-out ROC AUC falls this far below this run's.
MONITOR_AUC_DROP = 0.03
# Re-validate when the decline rate or the observed default rate moves this far (absolute share).
MONITOR_RATE_SHIFT = 0.05
# Re-validate when reviewers override more than this share of the decisions they review.
MONITOR_OVERRIDE_SHARE = 0.10
