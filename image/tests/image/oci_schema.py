"""Validates JSON documents against the OCI image-spec JSON Schemas (draft-04).

usage: oci_schema.py SCHEMA_DIR (SCHEMA_NAME FILE)...

Registers each schema file under the URLs from the schema folder's README alias table, so the
relative `$ref`s resolve offline. Exits non-zero (with the validation error) on the first
invalid document.
"""
import json
import sys

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ALIASES = {
    "config-schema.json": ["https://opencontainers.org/schema/image/config"],
    "content-descriptor.json": [
        "https://opencontainers.org/schema/descriptor",
        "https://opencontainers.org/schema/image/content-descriptor.json",
    ],
    "defs-descriptor.json": [
        "https://opencontainers.org/schema/image/descriptor/mediaType",
        "https://opencontainers.org/schema/defs-descriptor.json",
        "https://opencontainers.org/schema/image/defs-descriptor.json",
    ],
    "defs.json": [
        "https://opencontainers.org/schema/defs.json",
        "https://opencontainers.org/schema/image/defs.json",
        "https://opencontainers.org/schema/image/descriptor/defs.json",
    ],
    "image-index-schema.json": ["https://opencontainers.org/schema/image/index"],
    "image-layout-schema.json": ["https://opencontainers.org/schema/image/layout"],
    "image-manifest-schema.json": ["https://opencontainers.org/schema/image/manifest"],
}


def main():
    schema_dir, rest = sys.argv[1], sys.argv[2:]
    schemas = {}
    registry = Registry()
    for name, urls in ALIASES.items():
        with open(f"{schema_dir}/{name}") as f:
            schemas[name] = json.load(f)
        resource = Resource.from_contents(schemas[name], default_specification=DRAFT4)
        for url in urls:
            registry = registry.with_resource(url, resource)
    for name, path in zip(rest[::2], rest[1::2]):
        with open(path) as f:
            doc = json.load(f)
        validator = jsonschema.Draft4Validator(schemas[name], registry=registry)
        validator.validate(doc)
        print(f"{path}: valid {name}")


main()
