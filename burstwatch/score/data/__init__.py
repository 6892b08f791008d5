"""The default model shipped with the package (a package so setuptools includes it)."""
