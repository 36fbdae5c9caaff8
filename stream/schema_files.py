"""The JSON Schemas of the five topics, generated from riskpulse/records.py.

``python -m riskpulse.stream.schema_files`` rewrites ``stream/schemas/*.schema.json``; a test fails when
the committed files and the models drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from riskpulse.records import SCHEMAS

SCHEMA_DIR = Path(__file__).with_name("schemas")


def schema_for(topic: str) -> dict[str, Any]:
    schema = SCHEMAS[topic].model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"riskpulse/{topic}.schema.json",
            "title": f"riskpulse `{topic}` record", **schema}


def schema_path(topic: str) -> Path:
    return SCHEMA_DIR / f"{topic}.schema.json"


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    paths = []
    for topic in SCHEMAS:
        path = schema_path(topic)
        path.write_text(json.dumps(schema_for(topic), indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths


def load(topic: str) -> dict[str, Any]:
    return json.loads(schema_path(topic).read_text())


if __name__ == "__main__":
    for p in write_all():
        print(p)
