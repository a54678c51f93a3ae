"""The web UI start form: our fields in OPTIONS order, each labelled as in OPTIONS ("SLO p99 (ms)").

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

So the key is all a plugin has to label a field. ``form_fields`` keys each of our fields by its
label, made to pass those three steps unchanged (``field_key``): an invisible WORD JOINER
(U+2060) wherever the page would insert a space or a capital. With the templates'
``sort_keys`` off, the page keeps the dict's order. The posted key is then the label key, which
``tfs_user.webui.check_form`` maps back to the option's dest (Locust ignores unknown names).
"""

import re

from tfs_user.options import form_labels

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

    Other plugins' fields follow, as Locust gave them. Keys that are not dests of
    ours (already relabelled, say) are kept as they are.
    """
    keys = field_keys()
    ours = {keys[dest]: extra_options[dest] for dest in keys if dest in extra_options}
    return {**ours, **{k: v for k, v in extra_options.items() if k not in keys}}
