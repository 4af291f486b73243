"""The installed version of senet, in a module of its own so subpackages can read it without importing
``senet/__init__`` (which imports every subpackage)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("senet")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
