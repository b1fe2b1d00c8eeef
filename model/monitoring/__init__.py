"""Model quality in production: realised from delayed outcomes, estimated before they arrive.

numpy and pandas only: these modules run inside the deployed Function App (the monitor timer),
which ships without scikit-learn and scipy. Every metric is checked against scikit-learn in the
tests.

- `metrics`:   ROC AUC, PR AUC, Brier, log loss, share reached in the top fraction, precision at the
               decision, on weighted tie groups (so one pass serves a point value and a vectorised
               bootstrap alike).
- `join`:      predictions joined with the exported `campaign_outcomes` (which prediction an outcome
               judges, what counts as covered).
- `quality`:   per model version and period, the realised figures with bootstrap intervals, or an
               explicit status when the outcomes are too few or one class only.
- `histogram`: a fine, mergeable histogram of scored probabilities (shards add up exactly).
- `estimate`:  the label-free (CBPE-style) estimate from a histogram: expected ROC AUC, precision at
               the threshold, subscribers, with intervals.
- `compare`:   the realised figure beside the estimate on the same rows; a gap outside the interval
               is the sign of concept drift.
"""
