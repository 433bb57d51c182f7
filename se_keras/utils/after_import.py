"""Run a function once a module has been imported: now if it already is, else right after
its first import. `import se_keras` registers its keras-hub classes this way, so that it
costs nothing to those who never import keras_hub (whose import takes seconds)."""

import importlib.abc
import importlib.util
import sys
import warnings


def when_imported(name, callback):
    """Call `callback()` once module `name` is imported (a failure is a warning: it must not
    break that import)."""
    if name in sys.modules:
        _run(name, callback)
    else:
        sys.meta_path.insert(0, _Finder(name, callback))


def _run(name, callback):
    try:
        callback()
    except Exception as error:  # reported: the import itself goes on
        warnings.warn(f"se_keras: after importing {name}: {error}", stacklevel=3)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it hands on the module's own spec, whose loader calls back once
    the module has run."""

    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _run(fullname, self.callback)

        spec.loader.exec_module = exec_module
        return spec
