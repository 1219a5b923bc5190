"""The START loop as a LangGraph state graph: nodes in agent.nodes, each routing by `Command`."""

from __future__ import annotations

import math

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent import nodes
from agent.settings import RunOptions
from agent.state import AgentState, RunContext


def build_graph(
    checkpointer: BaseCheckpointSaver[str] | None = None,
) -> CompiledStateGraph[AgentState, RunContext]:
    graph = StateGraph(AgentState, context_schema=RunContext)
    targets = ("generate", "execute", "hint", "force_answer", "finalize")
    graph.add_node("generate", nodes.generate, destinations=targets)
    for name, node in (
        ("execute", nodes.execute),
        ("hint", nodes.hint),
        ("force_answer", nodes.force_answer),
    ):
        graph.add_node(name, node, destinations=("generate",))
    graph.add_node("finalize", nodes.finalize, destinations=(END,))
    graph.add_edge(START, "generate")
    return graph.compile(checkpointer=checkpointer)


def recursion_limit(options: RunOptions, round_tokens: int) -> int:
    """Steps a run may take: two per tool round, hint and budget continuation, with slack.
    Set on every run, so a model that loops ends with an error instead of running forever."""
    continuations = math.ceil((options.thinking_budget + options.answer_budget) / round_tokens)
    rounds = options.max_tool_calls + options.hint_rounds + options.min_tool_calls + continuations
    return 4 * rounds + 32
