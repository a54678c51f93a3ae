"""Start-form checks of the web UI: the TFS fields parsed and validated as the command line would.

A bad value gets the answer Locust gives for its own bad form values (``{"success": false,
"message": "error: ..."}``, shown in red under the form) instead of an HTTP 500 or a run that
stops at once. Imports neither Locust nor gRPC: testable in any process.
"""

import argparse
import re

from tfs_user.fitting import check_data
from tfs_user.options import OPTIONS
from tfs_user.settings import Settings


def ui_field_name(dest):
    """The name under which Locust's UI posts option ``dest``.

    The page camel-cases option names and snake-cases them back on submit (the
    two regular expressions of its ``camelCase``/``snakeCase`` helpers, ported
    here), which splits digit pairs: ``slo_p99_ms`` comes back as ``slo_p9_9ms``
    and Locust, not knowing that name, would drop the value.
    """
    camel = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), dest)
    if camel[0] == camel[0].upper():
        return camel
    return re.sub(r"([a-z0-9])([A-Z0-9])", r"\1_\2", camel).lower()


def _form_fields():
    """(dest, names posted by the UI, parse function, flag) for each TFS option."""
    fields = []
    for flags, kwargs in OPTIONS:
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        if kwargs.get("action") == "store_true":
            parse = lambda text: text == "true"  # noqa: E731  (how Locust reads a checkbox)
        else:
            parse = kwargs.get("type") or str
        fields.append((dest, {dest, ui_field_name(dest)}, parse, flags[0]))
    return fields


def check_form(environment, form, master=False):
    """Parse and validate the TFS fields of a start-form post.

    Returns ``(values, None)`` with the parsed values by option dest, or
    ``(None, message)``: one line naming the option, the value (never of a
    secret option: their parser is ``str``) and what was expected. The checks
    of start-up without the server: the option parsers, Settings, the numpy file.
    """
    options = environment.parsed_options
    values = {}
    for dest, names, parse, flag in _form_fields():
        name = next((n for n in names if n in form), None)
        if name is None:
            continue
        try:
            values[dest] = parse(form[name])
        except (argparse.ArgumentTypeError, ValueError) as e:
            return None, f"{flag}: {e}"
    candidate = argparse.Namespace(**{**vars(options), **values})
    host = form.get("host", environment.host) or ""
    try:
        settings = Settings.from_options(candidate, host)
        check_data(settings, master=master)  # as at start-up
    except ValueError as e:  # OptionError, DataError
        return None, str(e)
    return values, None
