"""Build hook: ship ``aquaml-keras-backend.pth`` into site-packages (all metadata is in pyproject.toml).

The .pth runs ``_aquaml_keras_backend.install()`` at interpreter start-up, so that a plain
``import keras`` before ``import aquaml`` gets the JAX backend where Keras' own choice is not
installed (see ``_aquaml_keras_backend.py``). A .pth file only works at the top of a site
directory, which neither packages nor package data can reach, so ``build_py`` writes it:

* regular wheels: into ``build_lib``, whose top level becomes the wheel's (site-packages);
* editable installs (PEP 660, ``pip install -e .``): setuptools ignores files in ``build_lib``
  there, and installs the top-level files it writes into ``install_lib``, the unpacked editable
  wheel (how it installs data files and scripts), so the .pth goes there. If a future setuptools
  changes that, the editable install goes on without the hook and says so.
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "aquaml-keras-backend.pth"
# A .pth line that starts with "import" is executed; the try keeps a missing or broken hook from
# printing a traceback at every interpreter start.
PTH_LINE = (
    'import sys; exec("try:\\n    import _aquaml_keras_backend\\n'
    '    _aquaml_keras_backend.install()\\nexcept Exception:\\n    pass\\n")\n'
)


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        target = self._pth_dir()
        if target is None:
            self.warn(f"{PTH_NAME} not installed: `import keras` before `import aquaml` needs KERAS_BACKEND=jax")
            return
        with open(os.path.join(target, PTH_NAME), "w", encoding="utf-8") as f:
            f.write(PTH_LINE)

    def _pth_dir(self):
        if not getattr(self, "editable_mode", False):
            os.makedirs(self.build_lib, exist_ok=True)
            return self.build_lib
        install = self.distribution.get_command_obj("install", create=False)
        wheel_dir = getattr(install, "install_lib", None)
        # editable_wheel points install_lib at the unpacked wheel, which already holds our dist-info
        if wheel_dir and os.path.isdir(wheel_dir) and any(
            name.endswith(".dist-info") and name.lower().startswith("aquaml-") for name in os.listdir(wheel_dir)
        ):
            return wheel_dir
        return None

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, PTH_NAME))
        return outputs


setup(cmdclass={"build_py": build_py_with_pth})
