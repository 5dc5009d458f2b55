"""htq, the HTTP Task Queue: send HTTP requests in the background, watch them, cancel them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("htq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
