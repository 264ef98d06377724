"""`gencompile serve`: a trained run behind an HTTP JSON API (FastAPI + uvicorn).

`engine` holds the model, loaded once, and answers requests with the code `gencompile
sample`, `score` and `impute` use; `api` is the FastAPI app (validation, limits, errors);
`server` runs it with uvicorn. FastAPI and uvicorn are imported only here, never by the
command line's start-up.
"""

from gencompile.serving.limits import Limits

__all__ = ["Limits"]
