"""What one request may ask of the server, so no request can take it over."""

from __future__ import annotations

from dataclasses import dataclass


class RequestError(Exception):
    """A request the model cannot answer: `status` is its HTTP code (404: this run's family
    has no such operation; 422: the request does not fit the model), the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Upper bounds of one request (all inclusive)."""

    max_samples: int = 1024  # /sample's n
    max_examples: int = 4096  # rows of one /score or /impute request
    max_body_bytes: int = 8 << 20  # a request body's size
    max_length: int = 1024  # tokens a language model adds to its prompt
