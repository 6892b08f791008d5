"""Built geo range tables shipped with the package (a package so setuptools includes them)."""
