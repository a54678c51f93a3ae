"""The web UI start form: labels and order of our fields, and checks of what it posts.

Checks: the TFS fields are parsed and validated as the command line would. A bad value gets
the answer Locust gives for its own bad form values (``{"success": false, "message":
"error: ..."}``, shown in red under the form) instead of an HTTP 500 or a run that stops at
once. Imports neither Locust nor gRPC: testable in any process.

Labels and order: The web UI start form: our fields in OPTIONS order, each labelled as in OPTIONS ("SLO p99 (ms)").

What Locust 2.47 does with a plugin's options (``locust/web.py`` ``update_template_args``,
``locust/argument_parser.py`` ``ui_extra_args_dict``, the page's bundle
``locust/webui/dist/assets/src-*.js``):

- ``template_args["extra_options"]`` = ``{dest: {default_value, is_secret, is_required,
  help_text, is_multiple, choices}}`` for each non-Locust option with ``include_in_web_ui``,
  recomputed before each rendering of ``index.html`` and written into the page by the
  template filter ``tojson``, which sorts keys (Jinja's policy ``json.dumps_kwargs``): the
  fields come in alphabetical order of dest, whatever the parser's order.
- The page camel-cases each key (``_x`` -> ``X``) and uses it as the field's ``name``. The label
  is that name with a space put between a lower-case letter or digit and a following capital or
  digit, first letter capitalised, then `` (help text)``: ``slo_p99_ms`` -> "Slo P9 9Ms (...)".
- On submit it posts each field under its name snake-cased back, except a name whose first
  character has no upper case form different from itself: that one is posted as it is.

Secrets: Locust writes each option's current value into the page as ``default_value``, a secret
option's (``is_secret``: ``--grpc-metadata``, a TLS key, another plugin's token) too, in plain
text for anyone who opens the page. ``form_fields`` empties every secret field's value, whoever
added the option, and ``without_empty_secrets`` drops a secret field posted back empty, so that
the value set at start-up stays (Locust would otherwise set it to the empty string).

Options not offered on the form (``include_in_web_ui=False``, e.g. ``--demo-server``, which
starts with the process) are refused when posted anyway, rather than accepted and ignored.

So the key is all a plugin has to label a field. ``form_fields`` keys each of our fields by its
label, made to pass those three steps unchanged (``field_key``): an invisible WORD JOINER
(U+2060) wherever the page would insert a space or a capital. With the templates'
``sort_keys`` off, the page keeps the dict's order. The posted key is then the label key, which
``check_form`` maps back to the option's dest (Locust ignores unknown names).
"""

import argparse
import re

from tfs_user.data.fitting import check_data
from tfs_user.options import OPTIONS, form_labels, topics
from tfs_user.settings import Settings



JOINER = "\u2060"
"""WORD JOINER: zero width, no line break; the page's regular expressions do not match it."""


def field_key(label):
    """The key under which the page shows ``label`` as it is and posts it back unchanged.

    ``"SLO p99 (ms)"`` -> ``"SLO p\\u20609\\u20609 (ms)"``; ``"gRPC compression"`` ->
    ``"\\u2060g\\u2060RPC compression"``. Raises ValueError for an empty label.
    """
    if not label:
        raise ValueError("empty label; expected the text of a form field's label")
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z0-9])", JOINER, label)  # the page's split into words
    key = re.sub(r"(?<=_)(?=[a-z0-9])", JOINER, key)  # its camel-casing of _x
    return key if key[0] == key[0].upper() else JOINER + key  # its capital first letter; its snake-casing


def field_keys():
    """{option dest: field key} for our options, in OPTIONS order."""
    return {dest: field_key(label) for dest, label in form_labels().items()}


def form_fields(extra_options):
    """Locust's ``extra_options`` with our fields first, in OPTIONS order and keyed by ``field_key(label)``.

    The page shows a field as ``label (help text)`` on one line and cuts what does not fit with an
    ellipsis; our help texts (what ``--help`` prints) did not fit. Our fields' help text is their
    topic instead (``Batch size (Load and capacity)``): short, and it shows the groups, which the
    page cannot draw otherwise.

    Other plugins' fields follow, as Locust gave them. Keys that are not dests of
    ours (already relabelled, say) are kept as they are.

    Every secret field (``is_secret``, ours or another plugin's) comes without its value: the page
    is readable by anyone who can open it. A secret that has a value says so in its help text.
    """
    keys = field_keys()
    topic = {dest: name for name, dests in topics().items() for dest in dests}
    ours = {keys[dest]: {**extra_options[dest], "help_text": topic[dest]} for dest in keys if dest in extra_options}
    fields = {**ours, **{k: v for k, v in extra_options.items() if k not in keys}}
    return {key: _hidden(field) if field.get("is_secret") else field for key, field in fields.items()}


SECRET_SET = "set; empty keeps it"
"""Help text added to a secret field that has a value (the value itself never reaches the page)."""


def _hidden(field):
    if not field.get("default_value"):  # nothing to hide (or hidden already)
        return {**field, "default_value": ""}
    help_text = field.get("help_text") or ""
    return {**field, "default_value": "", "help_text": f"{help_text}; {SECRET_SET}" if help_text else SECRET_SET}


def form_names(dest):
    """The names a field of option ``dest`` may be posted under: the dest, the page's snake-cased camel case,
    and (ours) the label key."""
    names = {dest, ui_field_name(dest)}
    key = field_keys().get(dest)
    return names | {key} if key else names


def without_empty_secrets(items, secret_dests):
    """``items`` (posted ``(name, value)`` pairs) without the empty fields of ``secret_dests``: the page shows
    secrets empty, so an empty one posted back means "keep the value", not "clear it"."""
    empty = set().union(*(form_names(dest) for dest in secret_dests)) if secret_dests else set()
    return [(name, value) for name, value in items if not (name in empty and value == "")]


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
    """(dest, names posted by the UI, parse function, flag, offered on the form) for each TFS option."""
    fields = []
    for flags, kwargs in OPTIONS:
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        if kwargs.get("action") == "store_true":
            parse = lambda text: text == "true"  # noqa: E731  (how Locust reads a checkbox)
        else:
            parse = kwargs.get("type") or str
        fields.append((dest, form_names(dest), parse, flags[0], kwargs.get("include_in_web_ui", True)))
    return fields


FIXED_WHILE_RUNNING = ("models", "batch_size", "images_numpy_path", "mix_seed", "arrival", "arrival_rate",
                       "arrival_trace", "trace_speedup", "trace_loop")
"""Options a running test cannot take from the form (the page's "Edit running load test" posts our fields too):
its user classes, requests and open-loop schedule were made when it started."""


def running_change(values, options):
    """While a test runs: one line for the first of FIXED_WHILE_RUNNING whose posted (parsed) value in ``values``
    differs from ``options``' (the value the test started with), or None."""
    flags = {dest: flag for dest, _, _, flag, _ in _form_fields()}
    for dest in FIXED_WHILE_RUNNING:
        if dest in values and values[dest] != getattr(options, dest, values[dest]):
            return (f"{flags[dest]} {values[dest]!r}: a test is running with {flags[dest]} {getattr(options, dest)!r} "
                    "(its users, requests and schedule were made when it started); stop it, then start a test with "
                    "the new value")
    return None


def check_form(environment, form, master=False):
    """Parse and validate the TFS fields of a start-form post.

    Returns ``(values, None)`` with the parsed values by option dest, or
    ``(None, message)``: one line naming the option, the value (never of a
    secret option: their parser is ``str``) and what was expected. The checks
    of start-up without the server: the option parsers, Settings, the numpy file.
    """
    options = environment.parsed_options
    values = {}
    for dest, names, parse, flag, offered in _form_fields():
        name = next((n for n in names if n in form), None)
        if name is None:  # (an empty secret is not posted on: ``without_empty_secrets``)
            continue
        if not offered:
            return None, f"{flag} is not set from the start form; give it when starting locust"
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
