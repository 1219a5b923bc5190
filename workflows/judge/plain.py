"""Plain data across the sandbox wall: a typed JSON codec for function inputs and results.

This module's source is also sent into sandboxes, so it imports only the standard library and
defines nothing else. Only exact builtin types pass (`type(x) is int`, never a subclass): an
object whose `__eq__` is always true cannot cross, and what does cross is compared as data.
JSON keeps int vs float apart; containers are tagged so tuple, set and dict survive.
"""

import json

SCALARS = (type(None), bool, int, float, str)


class NotPlain(TypeError):
    """A value that is not plain data (a custom class, a generator, a cycle too deep)."""


def encode(value, depth=0):  # type: ignore[no-untyped-def]
    """Plain data as JSON-able values; raises NotPlain for anything else."""
    if depth > 200:
        raise NotPlain("nested deeper than 200 levels")
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is list:
        return [encode(v, depth + 1) for v in value]
    if kind is tuple:
        return {"t": [encode(v, depth + 1) for v in value]}
    if kind is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        items = sorted((encode(v, depth + 1) for v in value), key=lambda e: json.dumps(e))
        return {"s" if kind is set else "fs": items}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    raise NotPlain(f"a {kind.__module__}.{kind.__qualname__} is not plain data")


def decode(data, depth=0):  # type: ignore[no-untyped-def]
    """The inverse of encode; raises NotPlain on anything encode cannot have written."""
    if depth > 200:
        raise NotPlain("nested deeper than 200 levels")
    kind = type(data)
    if kind in SCALARS:
        return data
    if kind is list:
        return [decode(v, depth + 1) for v in data]
    if kind is dict and len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "t" and type(body) is list:
            return tuple(decode(v, depth + 1) for v in body)
        if tag == "d" and type(body) is list and all(type(p) is list and len(p) == 2 for p in body):
            return {decode(k, depth + 1): decode(v, depth + 1) for k, v in body}
        if tag in ("s", "fs") and type(body) is list:
            items = [decode(v, depth + 1) for v in body]
            return set(items) if tag == "s" else frozenset(items)
        if tag == "b" and type(body) is str:
            return bytes.fromhex(body)
        if tag == "c" and type(body) is list and len(body) == 2:
            return complex(float(body[0]), float(body[1]))
    raise NotPlain(f"not encoded plain data: {str(data)[:80]}")


def dumps(value):  # type: ignore[no-untyped-def]
    return json.dumps(encode(value), sort_keys=True)


def loads(text):  # type: ignore[no-untyped-def]
    return decode(json.loads(text))
