"""What both protocols' response checks share: the outputs asked for must be in the answer.

Imports neither gRPC nor Locust.
"""


def missing_outputs(asked, names):
    """None when every name in ``asked`` (``--output-names``) is among ``names`` (the response's outputs), else
    one line naming the first missing one and what the response held."""
    for name in asked:
        if name not in names:
            held = ", ".join(sorted(names)) or "none"
            return f"response has no output {name!r} (asked for with --output-names); its outputs: {held}"
    return None
