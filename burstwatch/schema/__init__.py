"""The record schema: every field of every record burstwatch writes, declared once.

``fields.py`` is the table; writers, the rule field catalogue, ``docs/fields.md`` and the
strict JSON Schemas are generated from it (``jsonschema.py``, ``docs.py``).
"""

from burstwatch.schema.fields import (
    ALERT,
    BURST,
    CONVERSATION,
    ECS_VERSION,
    FIELDS,
    FLOW,
    RECORD_KINDS,
    Field,
    field,
    fields_of,
)

__all__ = ["ALERT", "BURST", "CONVERSATION", "ECS_VERSION", "FIELDS", "FLOW", "RECORD_KINDS",
           "Field", "field", "fields_of"]
