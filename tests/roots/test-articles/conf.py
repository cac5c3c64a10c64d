extensions = ["sphinx_evaldemo"]
project = "articles"
exclude_patterns = ["_build"]
# this root checks relative links (no html_baseurl): the feeds warning is checked on its own
suppress_warnings = ["evaldemo.feeds"]
