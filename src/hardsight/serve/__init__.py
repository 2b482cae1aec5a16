"""`hardsight serve`: a FastAPI app over run folders, and its web page."""

from hardsight.serve.app import create_app, run_server
from hardsight.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "run_server"]
