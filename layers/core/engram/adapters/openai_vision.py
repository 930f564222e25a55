"""ImageDescriber port on an OpenAI-compatible `/chat/completions` endpoint with a vision
model (OpenAI, vLLM, Ollama, Bedrock gateways), through the `openai` client: the image
goes inline as a data URL, the answer is one short factual sentence."""

from __future__ import annotations

import base64
import logging
from typing import Any

import openai

from engram.errors import ImageDescriptionFailed

log = logging.getLogger(__name__)

PROMPT = ("Describe what this image shows in one short, factual sentence, written as a noun "
          "phrase without a preamble (for example: a red bicycle leaning against a brick "
          "wall). Do not transcribe any text in it and do not guess at what is not visible.")
MAX_TOKENS = 80  # one sentence; also bounds what a slow model can cost an item
TIMEOUT_SECONDS = 30.0


def vision_client(base_url: str | None, api_key: str, timeout: float = TIMEOUT_SECONDS) -> Any:
    """The client a describer uses: one retry at most (the item completes without a
    description rather than holding the parse step), `timeout` per attempt. No key (a
    private endpoint without auth) sends a placeholder: the client insists on one."""
    from openai import OpenAI

    return OpenAI(base_url=base_url or None, api_key=api_key or "none", timeout=timeout,
                  max_retries=1)


class OpenAIVisionDescriber:
    name = "openai-vision"

    def __init__(self, client: Any, model: str, max_tokens: int = MAX_TOKENS):
        self._client = client
        self.model = model
        self.max_tokens = max_tokens

    def describe(self, image: bytes, content_type: str) -> str:
        url = f"data:{content_type};base64,{base64.b64encode(image).decode('ascii')}"
        try:
            response = self._client.chat.completions.create(
                model=self.model, max_tokens=self.max_tokens, temperature=0,
                messages=[{"role": "user", "content": [
                    {"type": "text", "text": PROMPT},
                    # "low": a fixed, small token cost per image; OCR reads the fine print.
                    {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}])
        except openai.APITimeoutError as exc:
            raise ImageDescriptionFailed("the vision endpoint timed out") from exc
        except openai.APIStatusError as exc:
            # The status only: a reply body may be long, and says nothing the user can act on.
            raise ImageDescriptionFailed(
                f"the vision endpoint answered HTTP {exc.status_code}") from exc
        except openai.APIConnectionError as exc:
            raise ImageDescriptionFailed("the vision endpoint could not be reached") from exc
        except openai.APIError as exc:
            raise ImageDescriptionFailed(f"the vision endpoint failed: {type(exc).__name__}") \
                from exc
        choices = response.choices or []
        text = (choices[0].message.content or "") if choices else ""
        sentence = " ".join(text.split())
        if not sentence:
            raise ImageDescriptionFailed("the vision model returned no description")
        return sentence
