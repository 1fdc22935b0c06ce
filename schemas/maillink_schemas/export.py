"""Writes JSON Schema (one file per model) and an AsyncAPI 3.0 document. Run: python -m maillink_schemas.export DIR"""
import json
import sys
from pathlib import Path

from .catalog import DEAD_LETTER_MODEL, TOPIC_KEYS, TOPIC_MODELS
from .topics import COMPACTED


def json_schemas() -> dict[str, dict]:
    models = {m.__name__: m for m in [*TOPIC_MODELS.values(), DEAD_LETTER_MODEL]}
    return {name: model.model_json_schema(mode="serialization") for name, model in sorted(models.items())}


def asyncapi() -> dict:
    schemas = json_schemas()
    channels, messages = {}, {}
    for topic, model in TOPIC_MODELS.items():
        cid = topic.replace(".", "_")
        channels[cid] = {
            "address": str(topic),
            "description": f"Key: {TOPIC_KEYS[topic]}." + (" Compacted." if topic in COMPACTED else "")
                           + f" Dead letters: {topic}.dlq ({DEAD_LETTER_MODEL.__name__}).",
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
        messages[model.__name__] = {"name": model.__name__, "contentType": "application/json",
                                    "payload": {"$ref": f"#/components/schemas/{model.__name__}"}}
    flat = {}
    for name, schema in schemas.items():
        for dname, d in schema.pop("$defs", {}).items():
            flat[dname] = d
        flat[name] = schema
    text = json.dumps({"asyncapi": "3.0.0", "info": {"title": "maillink", "version": "1"},
                       "channels": channels, "components": {"messages": messages, "schemas": flat}})
    return json.loads(text.replace("#/$defs/", "#/components/schemas/"))


def main(out: str) -> None:
    out_dir = Path(out)
    (out_dir / "jsonschema").mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out_dir / "jsonschema" / f"{name}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    (out_dir / "asyncapi.json").write_text(json.dumps(asyncapi(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(json_schemas())} JSON Schemas and asyncapi.json to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "schemas/generated")
