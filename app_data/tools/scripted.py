"""A chat model that plays a script: deterministic agent runs with no network and no API key.

The demo and the end-to-end tests drive real LangGraph agents with it. Its reply is chosen by
the conversation alone (the number of AI messages already in it), never by state kept in the
model, so a thread resumed in another process continues the script exactly where it stopped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = ["ScriptedChatModel", "Turn", "call", "reply"]

Turn = AIMessage | str | Callable[[Sequence[BaseMessage]], AIMessage]
"""One scripted reply: a message, plain text, or a function of the conversation so far."""


def call(name: str, **args: Any) -> ToolCall:
    """A tool call for a script (its id is filled in when the reply is made)."""
    return ToolCall(name=name, args=args, id=None, type="tool_call")


def reply(text: str = "", *calls: ToolCall) -> AIMessage:
    """A scripted AI message: some text and any number of tool calls."""
    return AIMessage(content=text, tool_calls=list(calls))


class ScriptedChatModel(BaseChatModel):
    """Reply ``script[n]`` to a conversation holding n AI messages; then `final` for ever.

    Tool calls without an id get ``call_<n>_<i>``, so ids are unique within a thread and the
    same in every run. `bind_tools` records the tools' names, and a scripted call to a tool
    that was not bound fails at once (a typo in a script, not a tool error for the agent).
    """

    script: list[Any]
    final: str = "Done."
    bound_tools: tuple[str, ...] = ()

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        return ChatResult(generations=[ChatGeneration(message=self.reply_for(turn, messages))])

    def reply_for(self, turn: int, messages: Sequence[BaseMessage]) -> AIMessage:
        """The reply to `messages` at `turn` (the count of AI messages in them)."""
        entry: Turn = self.script[turn] if turn < len(self.script) else self.final
        if isinstance(entry, str):
            message = AIMessage(content=entry)
        elif isinstance(entry, AIMessage):
            message = entry
        else:
            message = entry(messages)
        counter = itertools.count()
        calls = [
            ToolCall(
                name=c["name"],
                args=dict(c["args"]),
                id=c.get("id") or f"call_{turn}_{next(counter)}",
                type="tool_call",
            )
            for c in message.tool_calls
        ]
        unknown = sorted({c["name"] for c in calls} - set(self.bound_tools))
        if self.bound_tools and unknown:
            raise ValueError(f"the script calls tools that were not bound: {unknown}")
        return AIMessage(content=message.content, tool_calls=calls)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """This model with `tools` bound (it only checks that scripted calls name them)."""
        names = tuple(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"bound_tools": names})
