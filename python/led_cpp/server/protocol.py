"""The OpenAI request schemas the server accepts (pydantic), with led_cpp's extensions.

Unknown fields are refused as OpenAI refuses them; fields OpenAI has but led_cpp cannot honour
are accepted only at their neutral value."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from ..config import DEPTH_RULES, LAYER_COUNTINGS

# Upper bound of the top log-probabilities per token (OpenAI allows 5 for completions, 20 for chat).
MAX_TOP_LOGPROBS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LEDOptions(_Strict):
    """The ``led`` extension object: LEDConfig's fields (temperature comes from the request)."""

    d: StrictInt = Field(8, ge=1)
    k: StrictInt = Field(8, ge=1)
    ln: StrictBool = False
    exploit: StrictBool = True
    think_only: StrictBool = True
    think_end: str = "</think>"
    depth_rule: str = "max_entropy"
    fixed_depth: Optional[StrictInt] = None
    layer_counting: str = "paper"

    @field_validator("depth_rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        if value not in DEPTH_RULES:
            raise ValueError(f"must be one of {DEPTH_RULES}")
        return value

    @field_validator("layer_counting")
    @classmethod
    def _counting(cls, value: str) -> str:
        if value not in LAYER_COUNTINGS:
            raise ValueError(f"must be one of {LAYER_COUNTINGS}")
        return value


class StreamOptions(_Strict):
    include_usage: StrictBool = False


Stop = Optional[Union[str, List[str]]]


class _Sampling(_Strict):
    model: Optional[str] = None
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, gt=0, le=1)
    top_k: Optional[StrictInt] = Field(None, ge=0)
    min_p: Optional[float] = Field(None, ge=0, le=1)
    n: StrictInt = Field(1, ge=1)
    seed: Optional[StrictInt] = Field(None, ge=0, lt=2**63)
    stop: Stop = None
    stream: StrictBool = False
    stream_options: Optional[StreamOptions] = None
    max_tokens: Optional[StrictInt] = Field(None, ge=0)
    led: Optional[Union[StrictBool, LEDOptions]] = None
    # llama-server's extension: start from the KV of the longest prefix this prompt shares with
    # the prompt evaluated before it (a conversation resent with one more turn). Off: the whole
    # prompt is evaluated, so the logits do not depend on what came before.
    cache_prompt: StrictBool = True
    user: Optional[str] = None
    # OpenAI fields led_cpp does not implement: accepted only when neutral.
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    logit_bias: Optional[Dict[str, float]] = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: Stop) -> Stop:
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop strings")
        if any(not item for item in stops):
            raise ValueError("stop strings must not be empty")
        return value

    @model_validator(mode="after")
    def _neutral(self):
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) not in (None, 0, 0.0):
                raise ValueError(f"{name} is not supported by led_cpp; leave it out or set 0")
        if self.logit_bias:
            raise ValueError("logit_bias is not supported by led_cpp; leave it out")
        return self

    def stops(self) -> List[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


TokenIds = List[StrictInt]


class CompletionRequest(_Sampling):
    prompt: Union[str, List[str], TokenIds, List[TokenIds]]
    logprobs: Optional[StrictInt] = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    echo: StrictBool = False
    best_of: Optional[StrictInt] = None
    suffix: Optional[str] = None

    @model_validator(mode="after")
    def _completion(self):
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError("best_of is not supported by led_cpp; leave it out or set it equal to n")
        if self.suffix:
            raise ValueError("suffix is not supported by led_cpp; leave it out")
        return self

    def prompts(self) -> List[Union[str, List[int]]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            raise ValueError("prompt must not be empty")
        if all(isinstance(item, int) for item in prompt):
            return [list(prompt)]
        return list(prompt)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # tool_calls, name, ... pass on to the chat template
    role: str
    content: Optional[Union[str, List[TextPart]]] = None
    reasoning_content: Optional[str] = None

    def for_template(self) -> Dict[str, Any]:
        message = self.model_dump(exclude_none=True)
        if isinstance(self.content, list):
            message["content"] = "".join(part.text for part in self.content)
        message.setdefault("content", "")
        return message


class ChatRequest(_Sampling):
    messages: List[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Optional[StrictInt] = Field(None, ge=0)
    logprobs: StrictBool = False
    top_logprobs: Optional[StrictInt] = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    chat_template_kwargs: Optional[Dict[str, Any]] = None

    @model_validator(mode="after")
    def _chat(self):
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=true")
        return self

    def token_limit(self) -> Optional[int]:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class TokenizeRequest(_Strict):
    """llama-server's fields (content, add_special) and vLLM's (prompt, add_special_tokens)."""

    content: Optional[str] = None
    prompt: Optional[str] = None
    add_special: Optional[StrictBool] = None
    add_special_tokens: Optional[StrictBool] = None
    model: Optional[str] = None

    def special(self) -> bool:
        for value in (self.add_special, self.add_special_tokens):
            if value is not None:
                return value
        return True

    def text(self) -> str:
        text = self.content if self.content is not None else self.prompt
        if text is None:
            raise ValueError("give 'content' (the text to tokenize)")
        return text


class DetokenizeRequest(_Strict):
    tokens: TokenIds
    model: Optional[str] = None
