extensions = ["sphinx_evaldemo"]
project = "articles-errors"
exclude_patterns = ["_build"]
# relative links are fine here; the feeds warning is checked on its own
suppress_warnings = ["evaldemo.feeds"]
