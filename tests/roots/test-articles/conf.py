extensions = ["sphinx_evaldemo"]
project = "articles"
exclude_patterns = ["_build"]
# this root checks relative links (no html_baseurl), feeds included: asked for, they are
# written with relative links and a warning, which is checked on its own
evaldemo_feeds = True
suppress_warnings = ["evaldemo.feeds"]
