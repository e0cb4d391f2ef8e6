"""OpenAI-style errors: one body shape for every failure, and the FastAPI handlers that produce it.

Reference: the OpenAI API's error object, which the official client turns into typed exceptions by status
(400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 500 InternalServerError):
    {"error": {"message": str, "type": str, "param": str | null, "code": str | null}}
Contract: FastAPI answers a body that is not JSON or has wrong types with 422; here it is 400 (as OpenAI and
vLLM), with `param` naming the first offending field. Every handler returns a response and the server keeps
serving: a bad request never reaches the engine, and an unexpected exception is a 500 with its message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("stellarbyte.serve")

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          405: "invalid_request_error", 413: "invalid_request_error", 500: "internal_error"}


class OpenAIError(Exception):
    """A request the server refuses; status 400 unless said otherwise."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None,
                 type: str | None = None) -> None:  # noqa: A002 -- OpenAI's field name
        super().__init__(message)
        self.message, self.status, self.param, self.code = message, status, param, code
        self.type = type or _TYPES.get(status, "invalid_request_error")


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:  # noqa: A002
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(err: OpenAIError) -> JSONResponse:
    return JSONResponse(error_body(err.message, err.type, err.param, err.code), status_code=err.status)


def validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    """(message, param) for pydantic's first error: 'body -> messages -> 0 -> role' becomes param 'messages'."""
    first = err.errors()[0] if err.errors() else {}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    where = ".".join(loc) or "body"
    detail = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        return f"'{where}' is required", loc[0] if loc else None
    return f"invalid '{where}': {detail} (got {first.get('input')!r})", loc[0] if loc else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenAIError)
    async def _openai(_: Request, err: OpenAIError) -> JSONResponse:
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        message, param = validation_message(err)
        return error_response(OpenAIError(message, 400, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        message = "not found: see GET /v1/models and the OpenAI API paths" if err.status_code == 404 else err.detail
        return error_response(OpenAIError(str(message), err.status_code, code=None))

    @app.exception_handler(ValueError)
    async def _value(_: Request, err: ValueError) -> JSONResponse:  # engine checks (prompt too long, ...)
        return error_response(OpenAIError(str(err), 400))

    @app.exception_handler(Exception)
    async def _internal(_: Request, err: Exception) -> JSONResponse:
        log.exception("internal error")
        return error_response(OpenAIError(f"internal server error: {type(err).__name__}: {err}", 500))
