"""`gencompile schema`: a spec without `extends:` is checked whole, one with it as the partial
document it is (the shipped *_finetune.yaml specs are valid), and unknown keys are refused
either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gencompile.spec.reference import WHOLE, editor_schema

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
FINETUNE = ROOT / "specs" / "vae_digits_finetune.yaml"


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_extends_is_a_string_and_the_whole_spec_is_checked_without_it() -> None:
    schema = editor_schema()
    assert schema["properties"]["extends"]["type"] == "string"
    assert "required" not in schema and schema["additionalProperties"] is False
    assert schema["if"] == {"required": ["extends"]}
    assert schema["else"] == {"$ref": f"#/$defs/{WHOLE}"}
    whole = schema["$defs"][WHOLE]
    assert {"spec_version", "name", "data", "model"} <= set(whole["required"])
    assert whole["additionalProperties"] is False


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


def test_every_reference_resolves() -> None:
    schema = editor_schema()
    for ref in _refs(schema):
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref


def _known(schema: dict[str, Any], node: dict[str, Any], value: Any) -> bool:
    """Whether every key of `value` is a property somewhere `node` allows (keys only, the
    part of JSON Schema an extending spec needs; jsonschema checks the rest below)."""
    if "$ref" in node:
        return _known(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], value)
    options = node.get("anyOf", []) + node.get("oneOf", [])
    if options:
        return any(_known(schema, option, value) for option in options)
    if not isinstance(value, dict) or "properties" not in node:
        return True
    fields = node["properties"]
    return all(k in fields and _known(schema, fields[k], v) for k, v in value.items())


def test_the_partial_schema_knows_every_key_of_an_extending_spec() -> None:
    schema = editor_schema()
    spec = read(FINETUNE)
    assert "spec_version" not in spec and "type" not in spec["training"]["optimizer"]
    assert _known(schema, schema, spec)
    assert not _known(schema, schema, {**spec, "bogus": 1})
    assert not _known(schema, schema, {**spec, "training": {"optimizer": {"learnin_rate": 1}}})


def test_the_schema_accepts_every_shipped_spec_and_refuses_unknown_keys() -> None:
    import jsonschema  # a dev dependency: editors check specs with such a validator

    validator = jsonschema.Draft202012Validator(editor_schema())
    for path in SPECS:
        assert not list(validator.iter_errors(read(path))), path.name
    spec = read(FINETUNE)
    assert list(validator.iter_errors({**spec, "bogus": 1}))  # an unknown top-level key
    assert list(validator.iter_errors({k: v for k, v in read(SPECS[0]).items() if k != "name"}))
