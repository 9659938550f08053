"""The one compiled part: the L2 book (normalize/_l2book.c); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("normalize._l2book", ["normalize/_l2book.c"])])
