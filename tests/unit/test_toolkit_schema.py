"""Tool docstrings and argument descriptions are prompts: this pins them.

A change to a tool's schema must be deliberate: rerun with UPDATE_SNAPSHOTS=1 and
review the diff of tests/unit/snapshots/tool_schemas.json like a prompt change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fakes import offline_toolkit
from langchain_core.utils.function_calling import convert_to_openai_tool

SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_schemas.json"


def current_schemas() -> list[dict[str, Any]]:
    return [convert_to_openai_tool(t) for t in offline_toolkit()]


def test_tool_schemas_match_the_reviewed_snapshot_when_the_toolkit_is_built() -> None:
    schemas = current_schemas()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(schemas, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert schemas == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_no_tool_exposes_identity_or_limits_to_the_model_when_schemas_are_built() -> None:
    for schema in current_schemas():
        params = schema["function"]["parameters"].get("properties", {})
        assert not {"user_id", "user", "tier", "runtime", "conversation_id"} & set(params)
        assert schema["function"]["description"].strip()
