"""The one compiled part: the L2 books (normalize/_l2book.c); everything else is in pyproject.toml.

libm is named: the books round with nearbyint (Python's round(), for contract sizes), which an
interpreter that did not load libm itself would otherwise leave unresolved. Windows has no libm.
"""

import sys

from setuptools import Extension, setup

setup(ext_modules=[Extension("normalize._l2book", ["normalize/_l2book.c"],
                             libraries=[] if sys.platform == "win32" else ["m"])])
