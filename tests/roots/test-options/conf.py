# Option names checked by the extension, the same in MyST and reStructuredText.
project = "evaldemo-options"
extensions = ["sphinx_evaldemo"]
exclude_patterns = ["_build"]
evaldemo_workers = 1
