"""The seed's import paths (``AquaML.BaseClass``, ``AquaML.DataType``, ...), re-exported from ``aquaml``."""
import aquaml  # noqa: F401  (selects the Keras backend first)
