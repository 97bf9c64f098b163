"""An optional language model that rephrases chat answers, never their source.

The chat worker answers from facts it retrieved itself and builds a complete draft
from them; a model, when ``ILS_AI__LLM_BASE_URL`` is set, only turns facts and draft
into friendlier prose. It is told to use nothing but those facts, and anything going
wrong with it (down, slow, nonsense) leaves the draft as the answer, so the platform
works the same offline.

:class:`OpenAICompatibleModel` speaks the ``POST {base}/chat/completions`` API that
OpenAI and most self-hosted servers (vLLM, llama.cpp, Ollama) offer.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

import httpx

from ils.errors import ILSError
from ils.settings import AISettings

#: The model's only instructions: the facts are the whole truth it may use.
SYSTEM_PROMPT: Final = (
    "You answer questions about an optical business from the facts given. Answer only "
    "from these facts; if they do not answer the question, say so. Keep every figure, "
    "date, order number and SKU exactly as written. Be brief: one to three sentences."
)


class LanguageModelError(ILSError):
    """The language model could not phrase an answer (HTTP error, timeout, bad JSON).

    The message names the failure only, never the question or facts sent, since it
    may be logged.
    """


class LanguageModel(Protocol):
    """Rephrases a drafted answer from the facts behind it."""

    async def phrase(self, question: str, facts: dict[str, Any], draft: str) -> str:
        """The answer to ``question`` in the model's words, from ``facts`` only."""
        ...


def user_message(question: str, facts: dict[str, Any], draft: str) -> str:
    """What the model is given: the question, the facts as JSON and our draft."""
    return (
        f"Question: {question}\n\n"
        f"Facts (JSON): {json.dumps(facts, sort_keys=True, default=str)}\n\n"
        f"Draft answer built from the facts: {draft}"
    )


class OpenAICompatibleModel:
    """A chat-completions endpoint used with temperature 0 (the same facts give the
    same answer)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: AISettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> OpenAICompatibleModel | None:
        """The configured model, ``None`` when no endpoint is set (answers are then the
        drafts built from the facts)."""
        if not settings.llm_base_url:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(
            settings.llm_base_url,
            settings.llm_model,
            api_key=key,
            timeout_s=settings.llm_timeout_s,
            transport=transport,
        )

    async def phrase(self, question: str, facts: dict[str, Any], draft: str) -> str:
        """The model's answer (stripped).

        Raises:
            LanguageModelError: the request failed, timed out, or the reply is not a
                chat completion.
        """
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_message(question, facts, draft)},
            ],
        }
        try:
            response = await self._client.post("chat/completions", json=body)
            response.raise_for_status()
            reply = response.json()
        except httpx.HTTPStatusError as error:
            raise LanguageModelError(
                f"language model answered HTTP {error.response.status_code}"
            ) from error
        except httpx.HTTPError as error:
            raise LanguageModelError(
                f"language model request failed: {type(error).__name__}"
            ) from error
        except ValueError as error:
            raise LanguageModelError("language model reply is not JSON") from error
        return _content(reply)

    async def close(self) -> None:
        """Close the connection pool (at worker shutdown)."""
        await self._client.aclose()


def _content(reply: Any) -> str:
    """``choices[0].message.content`` of a chat completion."""
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise LanguageModelError("language model reply has no message content") from error
    if not isinstance(content, str):
        raise LanguageModelError("language model reply has no message content")
    return content.strip()
