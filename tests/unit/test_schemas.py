"""Saved sample documents must keep round-tripping: a breaking contract change fails here."""
import json
from pathlib import Path

import pytest

from maillink_schemas.catalog import DEAD_LETTER_MODEL, TOPIC_MODELS
from maillink_schemas.export import asyncapi, json_schemas

ROOT = Path(__file__).resolve().parents[2]
MODELS = {m.__name__: m for m in [*TOPIC_MODELS.values(), DEAD_LETTER_MODEL]}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sample_round_trips_unchanged(name):
    sample = json.loads((ROOT / "schemas" / "samples" / f"{name}.json").read_text())
    model = MODELS[name].model_validate(sample)
    assert json.loads(model.model_dump_json()) == sample


def test_every_contract_has_a_sample():
    assert {p.stem for p in (ROOT / "schemas" / "samples").glob("*.json")} == set(MODELS)


def test_unknown_fields_are_ignored_so_producers_can_add_optional_ones():
    sample = json.loads((ROOT / "schemas" / "samples" / "MessageLinked.json").read_text())
    assert MODELS["MessageLinked"].model_validate({**sample, "added_later": 1}).message_key == sample["message_key"]


def test_generated_documents_are_current():
    generated = ROOT / "schemas" / "generated"
    for name, schema in json_schemas().items():
        on_disk = json.loads((generated / "jsonschema" / f"{name}.json").read_text())
        assert on_disk == schema, f"{name}.json is stale: run `make schemas`"
    assert json.loads((generated / "asyncapi.json").read_text()) == asyncapi()


def test_topic_names_carry_a_version():
    assert all(str(t).rsplit(".", 1)[-1].startswith("v") for t in TOPIC_MODELS)
