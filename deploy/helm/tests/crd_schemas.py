"""Validate rendered custom resources against their CRD schemas.

The Istio kinds (security.istio.io) are checked with cloudcoil-models-istio
and the Prometheus Operator kinds with cloudcoil-models-prometheus-operator:
pydantic models generated from the projects' CRD OpenAPI schemas, so types,
enums, required fields and one-of constraints are the CRDs' own.

The generated models ignore unknown keys, as a CRD's structural schema
prunes them. The API server with strict field validation (kubectl's
default) rejects them instead, and a pruned key in a security policy is a
silent hole (a misspelt `ports` would allow every port), so unknown_keys()
walks the models and reports every key the schema does not define.

Run as a script over rendered files:

    python deploy/helm/tests/crd_schemas.py RENDERED/*/crds.yaml
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

import pydantic
import yaml


def model_for(doc: dict) -> type[pydantic.BaseModel]:
    """The generated model class for a document's apiVersion and kind."""
    from cloudcoil.models.istio.networking import v1 as istio_networking
    from cloudcoil.models.istio.security import v1 as istio_security
    from cloudcoil.models.prometheus_operator import v1 as prometheus_operator

    modules = {
        "security.istio.io/v1": istio_security,
        "networking.istio.io/v1": istio_networking,
        "monitoring.coreos.com/v1": prometheus_operator,
    }
    module = modules.get(doc.get("apiVersion"))
    cls = getattr(module, doc.get("kind", ""), None) if module else None
    if cls is None:
        raise LookupError(f"no schema for {doc.get('apiVersion')} {doc.get('kind')}")
    return cls


def _members(annotation) -> list:
    """Unwrap Annotated/Optional/Union into the candidate types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out = []
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                out += _members(arg)
        return out
    return [annotation]


def unknown_keys(annotation, value, path: str = "") -> list[str]:
    """Paths of keys in `value` that the type `annotation` does not define."""
    candidates = _members(annotation)
    if len(candidates) > 1:
        results = [unknown_keys(c, value, path) for c in candidates]
        return min(results, key=len)
    (tp,) = candidates
    origin = typing.get_origin(tp)
    if origin in (list, typing.List) and isinstance(value, list):
        (item,) = typing.get_args(tp) or (typing.Any,)
        return [k for i, v in enumerate(value) for k in unknown_keys(item, v, f"{path}[{i}]")]
    if origin in (dict, typing.Dict) and isinstance(value, dict):
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else typing.Any
        return [k for key, v in value.items() for k in unknown_keys(item, v, f"{path}.{key}")]
    if isinstance(tp, type) and issubclass(tp, pydantic.RootModel):
        return unknown_keys(tp.model_fields["root"].annotation, value, path)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel) and isinstance(value, dict):
        if tp.model_config.get("extra") == "allow":
            return []
        fields = {(f.alias or name): f for name, f in tp.model_fields.items()}
        found = []
        for key, v in value.items():
            if key not in fields:
                found.append(f"{path}.{key}")
            else:
                found += unknown_keys(fields[key].annotation, v, f"{path}.{key}")
        return found
    return []


def problems(doc: dict) -> list[str]:
    """Schema violations and unknown keys of one custom resource."""
    try:
        cls = model_for(doc)
    except LookupError as err:
        return [str(err)]
    found = []
    try:
        cls.model_validate(doc)
    except pydantic.ValidationError as err:
        found += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
    found += [f"unknown field {p.lstrip('.')}" for p in unknown_keys(cls, doc)]
    return found


def main(argv: list[str]) -> int:
    failed = 0
    checked = 0
    for filename in argv[1:]:
        for doc in yaml.safe_load_all(Path(filename).read_text()):
            if not doc:
                continue
            checked += 1
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            found = problems(doc)
            for p in found:
                print(f"{filename}: {name}: {p}")
            failed += bool(found)
    print(f"CRD schemas: {checked} resources checked, {failed} invalid")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
