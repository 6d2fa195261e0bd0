"""Home of the seed's ``AquaML.*`` submodules (``BaseClass``, ``DataType``, ``Tool``, ``rlalgo``,
``starter``), thin re-exports from :mod:`aquaml`.

Import them as ``AquaML.<name>``: the top-level module ``AquaML`` (``AquaML.py``) points its
``__path__`` here. They do not live in an ``AquaML/`` directory because ``AquaML/`` and
``aquaml/`` differ only in case, and case-insensitive file systems (the defaults on macOS and
Windows) merge the two.
"""
