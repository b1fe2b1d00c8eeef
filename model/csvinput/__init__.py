"""Reading, checking and scoring CSV input, with no storage attached: the one reader and validator.

The blob-triggered scoring (`functions/scoring/`) and the offline `python -m model score` both
drive these modules: the same byte checks, header checks, parser, validation, duplicate-id
policy and file-level rejection codes, over blobs or over local files. Nothing here imports
`functions/` (imports flow one way: functions -> model).
"""
