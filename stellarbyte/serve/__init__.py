"""The OpenAI-compatible server over the engine (`stellarbyte serve MODEL_DIR`; see docs/serving.md).

create_app(llm_or_engine, model_name, api_key=None) -> FastAPI. The import is lazy, so modules of this
package that need no web stack (the terminal chat) load without fastapi (the `serve` extra).
"""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from stellarbyte.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'stellarbyte.serve' has no attribute {name!r}")
