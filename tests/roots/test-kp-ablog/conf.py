# Articles beside ABlog: both extensions on, one post of each kind.
extensions = ["sphinx_evaldemo", "ablog"]
project = "both"
exclude_patterns = ["_build"]
html_baseurl = "https://both.example.org/"
blog_baseurl = "https://both.example.org/"
blog_path = "blog"
blog_title = "Both"
post_date_format = "%Y-%m-%d"
