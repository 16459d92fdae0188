"""MicroPython's modules as a board has them, for device code running on CPython.

Each module here exposes exactly the API of its MicroPython 1.27 namesake on the ESP ports, no
more: code that leans on something only CPython has fails here as it would on a board. Device code
reaches them through `hostemu.importer`; host code keeps CPython's own modules.
"""
