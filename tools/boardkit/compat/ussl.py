# `ussl` for code written before MicroPython 1.23, deployed beside micropython-lib's umqtt.simple
# 1.3.4 (the newest on PyPI), which does `import ussl`. Since 1.23 `ssl` is a Python module over
# the built-in `tls`, and the u-prefixed alias exists only for built-in modules, so that import
# fails on every current port. This file is the alias, nothing more.
from ssl import *  # noqa: F401,F403
