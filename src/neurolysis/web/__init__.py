"""The web planner (issue 12): ``neurolysis serve``, a page and an HTTP API under ``/api``.

Needs the ``web`` extra (FastAPI, uvicorn; the case store's SQLAlchemy). Only
:mod:`neurolysis.web.command` is imported by the CLI, and it imports argparse and the standard
library alone; :func:`neurolysis.web.app.create_app` builds the application.
"""
